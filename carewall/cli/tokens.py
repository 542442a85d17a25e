"""``carewall token create|list|revoke``: bearer tokens for the HTTP API.

The secret is printed once, on creation; only its SHA-256 is stored.
"""

from __future__ import annotations

import json

import click

from carewall.api import auth
from carewall.api.admin import issue_token
from carewall.cli import main
from carewall.service import Service

__all__ = ["token"]

_DB = click.option("--db", "db", default=None, help="Database URL (default: carewall.db).")


@main.group()
def token() -> None:
    """Bearer tokens for the HTTP API."""


@token.command("create")
@click.option("--org", "org", required=True, help="Organisation id the token acts for.")
@click.option(
    "--role", "role", required=True, type=click.Choice(list(auth.ROLES)), help="The token's role."
)
@click.option("--reviewer", default=None, help="Reviewer id (reviewer roles only).")
@_DB
def create(org: str, role: str, reviewer: str | None, db: str | None) -> None:
    """Create a token and print it once as JSON (keep the secret safe)."""
    service = Service.open(db)
    try:
        issued = issue_token(service, org, role, reviewer)
    finally:
        service.close()
    info = issued.info
    click.echo(
        json.dumps(
            {
                "id": info.id,
                "organisation": info.organisation,
                "role": info.role,
                "reviewer": info.reviewer,
                "secret": issued.secret,
            }
        )
    )


@token.command("list")
@click.option("--org", "org", default=None, help="Only this organisation's tokens.")
@_DB
def list_(org: str | None, db: str | None) -> None:
    """List tokens (ids and bindings; secrets are never stored)."""
    service = Service.open(db)
    try:
        for info in auth.list_tokens(service.store, org):
            click.echo(
                json.dumps(
                    {
                        "id": info.id,
                        "organisation": info.organisation,
                        "role": info.role,
                        "reviewer": info.reviewer,
                        "created_at": info.created_at,
                        "revoked_at": info.revoked_at,
                    }
                )
            )
    finally:
        service.close()


@token.command("revoke")
@click.argument("token_id")
@_DB
def revoke(token_id: str, db: str | None) -> None:
    """Revoke a token by id; it stops working at once."""
    service = Service.open(db)
    try:
        auth.revoke_token(service.store, token_id)
    finally:
        service.close()
    click.echo(f"revoked {token_id}")
