"""The disclosure service's tables: requests, subjects, events, appeals, notices, register.

Written out in full rather than from ``carewall.service.tables`` so this revision keeps
creating the same schema when the module later changes (a later change is a new revision).
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_service"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "svc_settings",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "svc_organisations",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("function", sa.String(100), nullable=False),
    )
    op.create_table(
        "svc_reviewers",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("organisation", sa.String(100), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
    )
    op.create_table(
        "svc_holder_keys",
        sa.Column("organisation", sa.String(100), primary_key=True),
        sa.Column("key", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "svc_requests",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("requester", sa.String(100), nullable=False),
        sa.Column("purpose", sa.String(100), nullable=False),
        sa.Column("legal_basis", sa.String(100), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("received_at", sa.String(20), nullable=False),
        sa.Column("decided_at", sa.String(20), nullable=False),
        sa.Column("reviewer", sa.String(100)),
        sa.Column("reviewed_at", sa.String(20)),
        sa.Column("review_note", sa.Text()),
        sa.Column("released_at", sa.String(20)),
        sa.Column("release", sa.Text()),
        sa.Column("withdrawn_by", sa.String(100)),
        sa.Column("withdrawn_at", sa.String(20)),
    )
    op.create_index("ix_svc_requests_holder", "svc_requests", ["holder"])
    op.create_index("ix_svc_requests_requester", "svc_requests", ["requester"])
    op.create_index("ix_svc_requests_stage", "svc_requests", ["stage"])
    op.create_table(
        "svc_subjects",
        sa.Column("request_id", sa.String(40), sa.ForeignKey("svc_requests.id"), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("is_child", sa.Boolean(), nullable=False),
        sa.Column("is_victim_or_witness", sa.Boolean(), nullable=False),
        sa.Column("contact", sa.Text()),
        sa.Column("commitment", sa.String(100), nullable=False),
        sa.Column("code_hash", sa.String(100)),
    )
    op.create_table(
        "svc_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(40), sa.ForeignKey("svc_requests.id")),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("time", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(100)),
        sa.Column("log_index", sa.BigInteger()),
        sa.Column("detail", sa.Text()),
    )
    op.create_index("ix_svc_events_request_id", "svc_events", ["request_id"])
    op.create_table(
        "svc_appeals",
        sa.Column("request_id", sa.String(40), sa.ForeignKey("svc_requests.id"), primary_key=True),
        sa.Column("by", sa.String(32), nullable=False),
        sa.Column("grounds", sa.Text(), nullable=False),
        sa.Column("prior_outcome", sa.String(32), nullable=False),
        sa.Column("lodged_at", sa.String(20), nullable=False),
        sa.Column("reviewer", sa.String(100)),
        sa.Column("decided_at", sa.String(20)),
        sa.Column("result", sa.String(32)),
    )
    op.create_table(
        "svc_notices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(40), sa.ForeignKey("svc_requests.id")),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("review_date", sa.String(10)),
        sa.Column("release_index", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.String(20), nullable=False),
        sa.Column("delivered_at", sa.String(20)),
        sa.Column("channel", sa.String(32)),
        sa.Column("body", sa.Text()),
    )
    op.create_index("ix_svc_notices_request_id", "svc_notices", ["request_id"])
    op.create_table(
        "svc_outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.Text()),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(20), nullable=False),
    )
    op.create_index("ix_svc_outbox_notice_id", "svc_outbox", ["notice_id"])


def downgrade() -> None:
    for name in (
        "svc_outbox",
        "svc_notices",
        "svc_appeals",
        "svc_events",
        "svc_subjects",
        "svc_requests",
        "svc_holder_keys",
        "svc_reviewers",
        "svc_organisations",
        "svc_settings",
    ):
        op.drop_table(name)
