"""Contract v2: retired register rows, per-subject consent and the holder's record of facts,
deferral decisions, a one-time claim on each notice, and the admin record.

Revision ID: 0004_firewall
Revises: 0003_api
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_firewall"
down_revision = "0003_api"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("svc_organisations") as b:
        b.add_column(sa.Column("retired_at", sa.String(20), nullable=True))
    with op.batch_alter_table("svc_reviewers") as b:
        b.add_column(sa.Column("retired_at", sa.String(20), nullable=True))
    with op.batch_alter_table("svc_subjects") as b:
        # the requester's consent claim for this person (from subjects[i].consent or a
        # consent basis), and the holder's record as confirmed or corrected at review
        b.add_column(sa.Column("consent", sa.Boolean, nullable=False, server_default=sa.false()))
        b.add_column(sa.Column("held_child", sa.Boolean, nullable=True))
        b.add_column(sa.Column("held_victim", sa.Boolean, nullable=True))
        b.add_column(sa.Column("held_consent", sa.Boolean, nullable=True))
    with op.batch_alter_table("svc_requests") as b:
        b.add_column(sa.Column("subjects_root", sa.String(64), nullable=True))
        # the holder's deferral of the subjects' notices: deferred | lifted (null: none)
        b.add_column(sa.Column("deferral", sa.String(16), nullable=True))
        b.add_column(sa.Column("deferral_until", sa.String(10), nullable=True))
        b.add_column(sa.Column("deferral_by", sa.String(100), nullable=True))
    with op.batch_alter_table("svc_notices") as b:
        # set once, atomically, by the worker that delivers the notice
        b.add_column(sa.Column("claimed_at", sa.String(20), nullable=True))
        b.add_column(sa.Column("path", sa.Text, nullable=True))  # JSON subjects-tree path
    op.create_table(
        "svc_admin_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.String(20), nullable=False),
        sa.Column("organisation", sa.String(100), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),  # token id, or "cli"
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),  # JSON: ids only, never a secret
    )
    op.create_index("ix_svc_admin_log_organisation", "svc_admin_log", ["organisation"])


def downgrade() -> None:
    op.drop_index("ix_svc_admin_log_organisation", table_name="svc_admin_log")
    op.drop_table("svc_admin_log")
    with op.batch_alter_table("svc_notices") as b:
        b.drop_column("path")
        b.drop_column("claimed_at")
    with op.batch_alter_table("svc_requests") as b:
        for c in ("deferral_by", "deferral_until", "deferral", "subjects_root"):
            b.drop_column(c)
    with op.batch_alter_table("svc_subjects") as b:
        for c in ("held_consent", "held_victim", "held_child", "consent"):
            b.drop_column(c)
    with op.batch_alter_table("svc_reviewers") as b:
        b.drop_column("retired_at")
    with op.batch_alter_table("svc_organisations") as b:
        b.drop_column("retired_at")
