"""Extracts (issue 10): a dataset filtered by the policy to a held file, released only by a
named reviewer.

``svc_extracts``: one row per extract, keyed by its request: its state (``held``,
``released``, or ``refused`` when nothing may go and no file was written), where the held
file is and its SHA-256 and size, rows per group and the categories each group's rows hold,
the mapping used (column names and categories: no data), the engine and format, and the
release's reviewer and time. Rows of the dataset are the request's subjects, as for any
request (``svc_subjects``).

Revision ID: 0010_extracts
Revises: 0009_notice_recording
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_extracts"
down_revision = "0009_notice_recording"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "svc_extracts",
        sa.Column("request_id", sa.String(40), sa.ForeignKey("svc_requests.id"), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("path", sa.Text, nullable=True),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("engine", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(80), nullable=True),
        sa.Column("bytes", sa.BigInteger, nullable=True),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("groups", sa.Text, nullable=False),
        sa.Column("mapping", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(20), nullable=False),
        sa.Column("released_at", sa.String(20), nullable=True),
        sa.Column("released_by", sa.String(100), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("svc_extracts")
