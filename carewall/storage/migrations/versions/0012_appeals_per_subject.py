"""Appeals per subject: a request may hold several appeals, one per subject of a release.

``svc_appeals`` was keyed by its request, so a request took one appeal: once one subject
of a release had appealed, every other subject of it was turned away. Each appeal now
has its own ``id`` (the order appeals are lodged, and so decided, in); a subject (by
position) appeals a request once, which a unique index on (request, subject) holds
(requesters' appeals, and subjects' lodged before 0006, have no position: null, which
neither SQLite nor PostgreSQL counts as a duplicate). Existing appeals are kept.

Revision ID: 0012_appeals_per_subject
Revises: 0011_drop_stage_index
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_appeals_per_subject"
down_revision = "0011_drop_stage_index"
branch_labels = None
depends_on = None

_KEPT = '"request_id", "by", "grounds", "prior_outcome", "lodged_at", "reviewer", '
_KEPT += '"decided_at", "result", "subject"'


def _columns(*, keyed_by_request: bool) -> list[sa.Column[object]]:
    out: list[sa.Column[object]] = []
    if not keyed_by_request:
        out.append(sa.Column("id", sa.Integer, primary_key=True, autoincrement=True))
    out += [
        sa.Column(
            "request_id",
            sa.String(40),
            sa.ForeignKey("svc_requests.id"),
            primary_key=keyed_by_request,
            nullable=False,
        ),
        sa.Column("by", sa.String(32), nullable=False),
        sa.Column("grounds", sa.Text(), nullable=False),
        sa.Column("prior_outcome", sa.String(32), nullable=False),
        sa.Column("lodged_at", sa.String(20), nullable=False),
        sa.Column("reviewer", sa.String(100)),
        sa.Column("decided_at", sa.String(20)),
        sa.Column("result", sa.String(32)),
        sa.Column("subject", sa.Integer),
    ]
    return out


def upgrade() -> None:
    op.create_table("svc_appeals_new", *_columns(keyed_by_request=False))
    op.execute(
        f"INSERT INTO svc_appeals_new ({_KEPT}) SELECT {_KEPT} FROM svc_appeals "
        "ORDER BY lodged_at, request_id"
    )
    op.drop_table("svc_appeals")
    op.rename_table("svc_appeals_new", "svc_appeals")
    op.create_index("ix_svc_appeals_request_id", "svc_appeals", ["request_id"])
    op.create_index(
        "ux_svc_appeals_request_subject", "svc_appeals", ["request_id", "subject"], unique=True
    )


def downgrade() -> None:
    # One appeal per request again: the first lodged of each request is kept.
    op.create_table("svc_appeals_old", *_columns(keyed_by_request=True))
    op.execute(
        f"INSERT INTO svc_appeals_old ({_KEPT}) SELECT {_KEPT} FROM svc_appeals a "
        "WHERE a.id = (SELECT MIN(b.id) FROM svc_appeals b WHERE b.request_id = a.request_id)"
    )
    op.drop_index("ux_svc_appeals_request_subject", table_name="svc_appeals")
    op.drop_index("ix_svc_appeals_request_id", table_name="svc_appeals")
    op.drop_table("svc_appeals")
    op.rename_table("svc_appeals_old", "svc_appeals")
