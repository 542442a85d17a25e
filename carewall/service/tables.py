"""The disclosure service's private tables (personal data lives here, never in the ledger).

Created only by the Alembic migration ``0002_service``; this module describes them for
queries. Times are stored as RFC 3339 UTC strings so SQLite and PostgreSQL sort alike.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "admin_log",
    "agreements",
    "appeals",
    "events",
    "holder_keys",
    "metadata",
    "notices",
    "organisations",
    "outbox",
    "requests",
    "reviewers",
    "settings",
    "subjects",
]

metadata = sa.MetaData()

settings = sa.Table(
    "svc_settings",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

organisations = sa.Table(
    "svc_organisations",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("function", sa.String(100), nullable=False),
    sa.Column("retired_at", sa.String(20)),
)

reviewers = sa.Table(
    "svc_reviewers",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("organisation", sa.String(100), nullable=False),
    sa.Column("roles", sa.Text, nullable=False),  # JSON list
    sa.Column("retired_at", sa.String(20)),
)

# One random HMAC key per holder: subject commitments are unlinkable across holders.
holder_keys = sa.Table(
    "svc_holder_keys",
    metadata,
    sa.Column("organisation", sa.String(100), primary_key=True),
    sa.Column("key", sa.LargeBinary, nullable=False),
)

requests = sa.Table(
    "svc_requests",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("holder", sa.String(100), nullable=False, index=True),
    sa.Column("requester", sa.String(100), nullable=False, index=True),
    sa.Column("purpose", sa.String(100), nullable=False),
    sa.Column("legal_basis", sa.String(100), nullable=False),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("document", sa.Text, nullable=False),  # the parsed request, JSON
    sa.Column("decision", sa.Text, nullable=False),  # contract §4 JSON at submission
    sa.Column("received_at", sa.String(20), nullable=False),
    sa.Column("decided_at", sa.String(20), nullable=False),
    sa.Column("reviewer", sa.String(100)),
    sa.Column("reviewed_at", sa.String(20)),
    sa.Column("review_note", sa.Text),
    sa.Column("released_at", sa.String(20)),
    sa.Column("release", sa.Text),  # JSON: what went, to whom, per group
    sa.Column("withdrawn_by", sa.String(100)),
    sa.Column("withdrawn_at", sa.String(20)),
    sa.Column("subjects_root", sa.String(64)),
    sa.Column("deferral", sa.String(16)),  # deferred | lifted | None
    sa.Column("deferral_until", sa.String(10)),
    sa.Column("deferral_by", sa.String(100)),
)

subjects = sa.Table(
    "svc_subjects",
    metadata,
    sa.Column("request_id", sa.String(40), sa.ForeignKey("svc_requests.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("ref", sa.Text, nullable=False),
    sa.Column("is_child", sa.Boolean, nullable=False),
    sa.Column("is_victim_or_witness", sa.Boolean, nullable=False),
    sa.Column("contact", sa.Text),
    sa.Column("commitment", sa.String(100), nullable=False),
    # SHA-256 of the subject's access code; the code itself is only ever in their notice.
    sa.Column("code_hash", sa.String(100)),
    # the requester's consent claim, and the holder's record confirmed at review
    sa.Column("consent", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("held_child", sa.Boolean),
    sa.Column("held_victim", sa.Boolean),
    sa.Column("held_consent", sa.Boolean),
)

events = sa.Table(
    "svc_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(40), sa.ForeignKey("svc_requests.id"), index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("time", sa.String(20), nullable=False),
    sa.Column("actor", sa.String(100)),
    sa.Column("log_index", sa.BigInteger),
    sa.Column("detail", sa.Text),
)

# One row per appeal, in the order lodged (and decided): a requester's against a refusal,
# and each subject's against a release, once per subject (0012_appeals_per_subject).
appeals = sa.Table(
    "svc_appeals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "request_id", sa.String(40), sa.ForeignKey("svc_requests.id"), nullable=False, index=True
    ),
    sa.Column("by", sa.String(32), nullable=False),
    sa.Column("grounds", sa.Text, nullable=False),
    sa.Column("prior_outcome", sa.String(32), nullable=False),
    sa.Column("lodged_at", sa.String(20), nullable=False),
    sa.Column("reviewer", sa.String(100)),
    sa.Column("decided_at", sa.String(20)),
    sa.Column("result", sa.String(32)),
    sa.Column("subject", sa.Integer),  # the appealing subject's position (0006_idempotency)
    sa.Index("ux_svc_appeals_request_subject", "request_id", "subject", unique=True),
)

notices = sa.Table(
    "svc_notices",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(40), sa.ForeignKey("svc_requests.id"), index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),  # sent | deferred
    sa.Column("review_date", sa.String(10)),
    sa.Column("release_index", sa.BigInteger, nullable=False),
    sa.Column("log_index", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.String(20), nullable=False),
    sa.Column("delivered_at", sa.String(20)),
    sa.Column("channel", sa.String(32)),
    sa.Column("body", sa.Text),
    sa.Column("claimed_at", sa.String(20)),
    sa.Column("path", sa.Text),  # JSON: the subject's path in the request's subjects tree
)

outbox = sa.Table(
    "svc_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("notice_id", sa.Integer, nullable=False, index=True),
    sa.Column("recipient", sa.Text),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(20), nullable=False),
)

# What admins did (tokens issued and revoked, reviewers changed): the holder's private record.
admin_log = sa.Table(
    "svc_admin_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.String(20), nullable=False),
    sa.Column("organisation", sa.String(100), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text),
)

# Standing data-sharing agreements (0007_agreements): terms as logged, progress, private title.
agreements = sa.Table(
    "svc_agreements",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(100), nullable=False, index=True),
    sa.Column("recipient", sa.String(100), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),  # registered|refused|…
    sa.Column("terms", sa.Text, nullable=False),  # JSON: the public terms
    sa.Column("rules", sa.Text, nullable=False),  # JSON: the pledge rules that refused it
    sa.Column("title", sa.Text),
    sa.Column("text_sha256", sa.String(80)),
    sa.Column("recipient_key", sa.Text),
    sa.Column("registered_at", sa.String(20), nullable=False),
    sa.Column("registered_index", sa.BigInteger, nullable=False),
    sa.Column("withdrawn_at", sa.String(20)),
    sa.Column("withdrawn_index", sa.BigInteger),
    sa.Column("releases", sa.Integer),
    sa.Column("subjects", sa.Integer),
    sa.Column("released", sa.Text),  # JSON list of categories
    sa.Column("due", sa.String(10)),
    sa.Column("destroyed_at", sa.String(20)),
    sa.Column("destroyed_index", sa.BigInteger),
    sa.Column("certificate", sa.String(80)),
    sa.Column("deletion_index", sa.BigInteger),
    # the certificate file's exact text, served at /certificates/<hex> (0013)
    sa.Column("certificate_text", sa.Text),
)


extracts = sa.Table(
    "svc_extracts",
    metadata,
    sa.Column("request_id", sa.String(40), sa.ForeignKey("svc_requests.id"), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),  # pending|held|released|refused|failed
    sa.Column("path", sa.Text),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("engine", sa.String(16), nullable=False),
    sa.Column("sha256", sa.String(80)),
    sa.Column("bytes", sa.BigInteger),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("groups", sa.Text, nullable=False),  # JSON
    sa.Column("mapping", sa.Text, nullable=False),  # JSON: column names and categories
    sa.Column("created_at", sa.String(20), nullable=False),
    sa.Column("released_at", sa.String(20)),
    sa.Column("released_by", sa.String(100)),
)
