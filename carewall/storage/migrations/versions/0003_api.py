"""API bearer tokens: only the SHA-256 of each secret is stored, bound to an organisation and role.

Revision ID: 0003_api
Revises: 0002_service
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_api"
down_revision = "0002_service"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        # hex SHA-256 of the whole secret; the secret itself is shown once and never stored
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("organisation", sa.String(100), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("reviewer", sa.String(100), nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("revoked_at", sa.String(32), nullable=True),
    )
    op.create_index("ix_api_tokens_organisation", "api_tokens", ["organisation"])


def downgrade() -> None:
    op.drop_index("ix_api_tokens_organisation", table_name="api_tokens")
    op.drop_table("api_tokens")
