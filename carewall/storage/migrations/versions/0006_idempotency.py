"""Idempotent submissions, and which subject lodged an appeal.

``svc_idempotency`` keeps, per requesting organisation and ``Idempotency-Key``, the first
result of a submission (request id, outcome, log index) and a digest of the document it
was for, written in the same transaction as the request itself; a retry with the same key
and document gets that result back instead of recording the request twice. Rows expire
after a day (``carewall.service.idempotency.TTL``).

``svc_appeals.subject`` is the position of the subject who lodged an appeal (null for a
requester's appeal, and for appeals lodged before this revision), so a subject's grounds
are shown to that subject alone, never to another subject of the same request.

Revision ID: 0006_idempotency
Revises: 0005_web
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_idempotency"
down_revision = "0005_web"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "svc_idempotency",
        sa.Column("requester", sa.String(100), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        # no foreign key: the row is claimed first in the submitting transaction
        sa.Column("request_id", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("log_index", sa.BigInteger),
        sa.Column("created_at", sa.String(20), nullable=False),
    )
    op.create_index("ix_svc_idempotency_created_at", "svc_idempotency", ["created_at"])
    with op.batch_alter_table("svc_appeals") as batch:
        batch.add_column(sa.Column("subject", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("svc_appeals") as batch:
        batch.drop_column("subject")
    op.drop_index("ix_svc_idempotency_created_at", table_name="svc_idempotency")
    op.drop_table("svc_idempotency")
