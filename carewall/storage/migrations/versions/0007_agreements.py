"""Standing data-sharing agreements (issue 9, item 3): the holder's register of them.

``svc_agreements`` holds one row per agreement id ever put forward, refused ones included
(an id is never reused): its public terms as the ``agreement`` log entry states them
(JSON), the private words never logged (``title``), the recipient's pinned verifier key,
and its progress: registered, withdrawn (with what was released under it and when its
destruction is due), destroyed (with the recipient's certificate hash and the index of the
``deletion`` entry that records it). Each step's log index is kept beside it.

Revision ID: 0007_agreements
Revises: 0006_jobs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_agreements"
down_revision = "0006_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "svc_agreements",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(100), nullable=False, index=True),
        sa.Column("recipient", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("terms", sa.Text, nullable=False),
        sa.Column("rules", sa.Text, nullable=False),
        sa.Column("title", sa.Text),
        sa.Column("text_sha256", sa.String(80)),
        sa.Column("recipient_key", sa.Text),
        sa.Column("registered_at", sa.String(20), nullable=False),
        sa.Column("registered_index", sa.BigInteger, nullable=False),
        sa.Column("withdrawn_at", sa.String(20)),
        sa.Column("withdrawn_index", sa.BigInteger),
        sa.Column("releases", sa.Integer),
        sa.Column("subjects", sa.Integer),
        sa.Column("released", sa.Text),
        sa.Column("due", sa.String(10)),
        sa.Column("destroyed_at", sa.String(20)),
        sa.Column("destroyed_index", sa.BigInteger),
        sa.Column("certificate", sa.String(80)),
        sa.Column("deletion_index", sa.BigInteger),
    )


def downgrade() -> None:
    op.drop_table("svc_agreements")
