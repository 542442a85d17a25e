"""Witnesses: the latest checkpoint this instance cosigned per log (being a witness), and
the cosignatures and progress of the witnesses this log asks (asking witnesses).

``witness_logs``: one row per witnessed log origin, moved only by a compare-and-swap on
(size, root) (see :mod:`carewall.witness.store`). ``witness_cosignatures``: the cosignature
lines collected per checkpoint size and witness. ``witness_status``: per witness, the size
it last said it holds, the last error and when to try again.

Revision ID: 0008_witness
Revises: 0007_agreements
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_witness"
down_revision = "0007_agreements"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "witness_logs",
        sa.Column("origin", sa.String(255), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_table(
        "witness_cosignatures",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("witness", sa.String(255), primary_key=True),
        sa.Column("line", sa.Text, nullable=False),
        sa.Column("cosigned_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "witness_status",
        sa.Column("witness", sa.String(255), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=True),
        sa.Column("cosigned_size", sa.BigInteger, nullable=True),
        sa.Column("error", sa.String(200), nullable=True),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("retry_at", sa.Float, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("witness_status")
    op.drop_table("witness_cosignatures")
    op.drop_table("witness_logs")
