"""``carewall token create|list|revoke|log``: bearer tokens for the HTTP API.

The secret is printed once, on creation; only its SHA-256 is stored. Every issue and
revocation is recorded in the admin log, which ``carewall token log`` prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from carewall.api import auth
from carewall.api.admin import issue_token
from carewall.cli import main

# --key is accepted so every command takes the same --db/--key pair; tokens never sign.
from carewall.cli.options import db_and_key as _db_key
from carewall.errors import InputError
from carewall.service import Service

__all__ = ["token"]

_F = TypeVar("_F", bound=Callable[..., Any])


@main.group()
def token() -> None:
    """Bearer tokens for the HTTP API."""


@token.command("create")
@click.option("--org", "org", required=True, help="Organisation id the token acts for.")
@click.option(
    "--role", "role", required=True, type=click.Choice(list(auth.ROLES)), help="The token's role."
)
@click.option(
    "--reviewer",
    default=None,
    help="Reviewer id: only for release_reviewer and appeal_reviewer tokens.",
)
@_db_key
def create(org: str, role: str, reviewer: str | None, db: str | None, key: str | None) -> None:
    """Create a token and print it once as JSON (keep the secret safe).

    Admin and reviewer tokens cannot be issued to an immigration_enforcement body; the
    issue is recorded in the admin log (see `carewall token log`).
    """
    if reviewer is not None and role not in auth.REVIEWER_ROLES:
        raise InputError(
            "is only for release_reviewer and appeal_reviewer tokens",
            field="--reviewer",
            fix=f"leave it out for role {role}",
        )
    if reviewer is None and role in auth.REVIEWER_ROLES:
        raise InputError(
            f"a {role} token acts for one reviewer",
            field="--reviewer",
            fix="pass --reviewer REVIEWER_ID, a reviewer of --org who holds the role",
        )
    service = Service.open(db, key)
    try:
        issued = issue_token(service, org, role, reviewer, actor="cli")
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
@_db_key
def list_(org: str | None, db: str | None, key: str | None) -> None:
    """List tokens (ids and bindings; secrets are never stored)."""
    service = Service.open(db, key)
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
@_db_key
def revoke(token_id: str, db: str | None, key: str | None) -> None:
    """Revoke a token by id; it stops working at once (recorded in the admin log)."""
    service = Service.open(db, key)
    try:
        auth.revoke_token(service.store, token_id, actor="cli")
    finally:
        service.close()
    click.echo(f"revoked {token_id}")


@token.command("log")
@click.option("--org", "org", default=None, help="Only this organisation's record.")
@_db_key
def log(org: str | None, db: str | None, key: str | None) -> None:
    """Print the admin record as JSON lines, oldest first.

    Every token issued or revoked (by the CLI, "cli", or over HTTP, the admin token's id)
    and every register change, with ids only: never a secret or a name.
    """
    service = Service.open(db, key)
    try:
        records = service.admin_log(org)
    finally:
        service.close()
    for r in records:
        click.echo(
            json.dumps(
                {
                    "time": r.time,
                    "organisation": r.organisation,
                    "actor": r.actor,
                    "action": r.action,
                    "detail": r.detail,
                }
            )
        )
