"""Sign-in sessions for the pages: a reviewer or DPO exchanges a token for a session cookie.

Only the SHA-256 of the session secret is stored (as for tokens), with the token it stands
for, so revoking the token ends its sessions, and the per-session CSRF secret.

Revision ID: 0005_web
Revises: 0004_firewall
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_web"
down_revision = "0004_firewall"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("token", sa.String(16), nullable=False),  # api_tokens.id
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(20), nullable=False),
        sa.Column("expires_at", sa.String(20), nullable=False),
    )
    op.create_index("ix_web_sessions_token", "web_sessions", ["token"])


def downgrade() -> None:
    op.drop_index("ix_web_sessions_token", table_name="web_sessions")
    op.drop_table("web_sessions")
