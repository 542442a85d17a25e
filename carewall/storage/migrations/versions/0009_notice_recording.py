"""A release's notices recorded by its job, subject by subject, off the reviewer's call.

``svc_jobs.stage``: ``record`` while the job still has to write its request's notices (a
notice row per released subject and, unless they are deferred, a ``notice`` log entry each),
then ``deliver`` (NULL for jobs made before this revision, which only deliver).
``svc_jobs.cursor``: the next subject position the recording stage will look at; it moves
in the same transaction as each batch of notices it records, so a job taken over after a
crash goes on from where the last committed batch ended.

``uq_notices_subject``: one notice per subject of a request, whoever writes it: two workers
that both believe they hold a job can never record a subject's notice twice.

Revision ID: 0009_notice_recording
Revises: 0008_witness
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_notice_recording"
down_revision = "0008_witness"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("svc_jobs") as b:
        b.add_column(sa.Column("stage", sa.String(16), nullable=True))
        b.add_column(sa.Column("cursor", sa.Integer, nullable=False, server_default="0"))
    op.create_index("uq_notices_subject", "svc_notices", ["request_id", "position"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_notices_subject", table_name="svc_notices")
    with op.batch_alter_table("svc_jobs") as b:
        b.drop_column("cursor")
        b.drop_column("stage")
