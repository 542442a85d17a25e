"""Drop ``ix_svc_requests_stage``: no query can use it, and every write pays for it.

The only filter on a request's stage is the list's ``stage = :s OR outcome = :s``, which
neither SQLite nor PostgreSQL can answer from an index on ``stage`` alone (``outcome`` has
none), so both scan (or use the holder's or requester's index) whatever this one holds.
Meanwhile every submit, review and appeal wrote to it: on SQLite one more 16 KiB page in
each commit's write-ahead log. Dropping it changes no result.

Revision ID: 0011_drop_stage_index
Revises: 0010_extracts
"""

from __future__ import annotations

from alembic import op

revision = "0011_drop_stage_index"
down_revision = "0010_extracts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_svc_requests_stage", table_name="svc_requests")


def downgrade() -> None:
    op.create_index("ix_svc_requests_stage", "svc_requests", ["stage"])
