"""Durable background jobs (a release's notices delivered off the request path), and
indexes that find undelivered notices without reading the delivered ones.

``svc_jobs`` holds one row per piece of long work, e.g. delivering the notices of one
release or of one lifted deferral: its state (queued | running | done), progress (``done``
of ``total``), the worker holding it and when that worker last showed it was alive
(``heartbeat_at``: a running job whose heartbeat is older than the lease is taken over),
how many times it was started, the last error's code (never personal data), and when it
may next be tried (``run_after``).

The two partial indexes cover only notices not yet delivered (a handful in steady state),
so the periodic sweep and a job's batches stay cheap however many notices were ever sent.

Revision ID: 0006_jobs
Revises: 0006_idempotency
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_jobs"
# Chained after the other 0006 so the tree has one head; when integrating, re-chain as
# needed (this migration depends only on 0005_web's tables).
down_revision = "0006_idempotency"
branch_labels = None
depends_on = None

_UNDELIVERED = sa.text("delivered_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "svc_jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(40), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.String(20), nullable=False),
        sa.Column("run_after", sa.String(20), nullable=False),
        sa.Column("started_at", sa.String(20), nullable=True),
        sa.Column("heartbeat_at", sa.String(20), nullable=True),
        sa.Column("finished_at", sa.String(20), nullable=True),
        sa.Column("worker", sa.String(100), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.String(200), nullable=True),
    )
    op.create_index("ix_svc_jobs_state", "svc_jobs", ["state", "id"])
    op.create_index("ix_svc_jobs_request_id", "svc_jobs", ["request_id"])
    op.create_index(
        "ix_svc_notices_undelivered",
        "svc_notices",
        ["id"],
        sqlite_where=_UNDELIVERED,
        postgresql_where=_UNDELIVERED,
    )
    op.create_index(
        "ix_svc_notices_undelivered_request",
        "svc_notices",
        ["request_id", "id"],
        sqlite_where=_UNDELIVERED,
        postgresql_where=_UNDELIVERED,
    )


def downgrade() -> None:
    op.drop_index("ix_svc_notices_undelivered_request", table_name="svc_notices")
    op.drop_index("ix_svc_notices_undelivered", table_name="svc_notices")
    op.drop_index("ix_svc_jobs_request_id", table_name="svc_jobs")
    op.drop_index("ix_svc_jobs_state", table_name="svc_jobs")
    op.drop_table("svc_jobs")
