"""Publish each destruction certificate: ``svc_agreements.certificate_text``.

A ``destroyed`` agreement entry holds only its certificate's SHA-256, so an outside
auditor could not tell a certificate the recipient signed from a hash that names nothing.
The service now keeps the certificate's exact text when it registers a destruction and
serves it at ``/certificates/<hex>`` (it holds ids, counts, table and column names, dates
and HMAC commitments, never a deleted value); ``carewall audit`` fetches each one the log
names and checks it. Destructions registered before this revision have no text kept:
null, and the auditor says each is unpublished.

Revision ID: 0013_certificates_published
Revises: 0012_appeals_per_subject
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_certificates_published"
down_revision = "0012_appeals_per_subject"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("svc_agreements") as batch:
        batch.add_column(sa.Column("certificate_text", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("svc_agreements") as batch:
        batch.drop_column("certificate_text")
