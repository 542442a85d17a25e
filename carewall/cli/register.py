"""``carewall register``: read and change the organisations register, every change logged.

The register is public and accountable (contract §2): each command that changes it writes
its ``organisation`` or ``reviewer`` entries to the public log in the same transaction as
the change, signs a checkpoint, and prints what was logged (kind, id, change, log index).
Reviewers' names are kept privately and never printed or logged.

    carewall register list [--json]
    carewall register org add ID --name NAME --function F
    carewall register org retire ID
    carewall register reviewer add ID --name NAME --org ORG --role R [--role R]
    carewall register reviewer roles ID --role R [--role R]
    carewall register reviewer retire ID
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.table import Table

from carewall.cli import main, out_console
from carewall.cli.options import db_and_key as _db_and_key
from carewall.service import Service
from carewall.service.register_policy import RegisterChange
from carewall.vocab import vocabulary

__all__ = ["register"]

_F = TypeVar("_F", bound=Callable[..., Any])


_ROLE = click.option(
    "--role",
    "roles",
    required=True,
    multiple=True,
    type=click.Choice(list(vocabulary()["role"])),
    help="A role; repeat for both.",
)


def _change(db: str | None, key: str | None, do: Callable[[Service], RegisterChange[Any]]) -> None:
    service = Service.open(db, key)
    try:
        change = do(service)
    finally:
        service.close()
    for x in change.logged:
        click.echo(f"logged {x.kind} {x.id} {x.change} at log index {x.log_index}")


@main.group()
def register() -> None:
    """The organisations register: list it, add or retire organisations and reviewers."""


@register.command("list")
@_db_and_key
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def list_(db: str | None, key: str | None, as_json: bool) -> None:
    """List organisations and reviewers, retired ones included (never reviewers' names)."""
    service = Service.open(db, key)
    try:
        reg = service.register()
    finally:
        service.close()
    orgs = [*reg.organisations.values(), *reg.retired_organisations.values()]
    revs = [*reg.reviewers.values(), *reg.retired_reviewers.values()]
    if as_json:
        out = {
            "organisations": [
                {"id": o.id, "name": o.name, "function": o.function, "retired_at": o.retired_at}
                for o in orgs
            ],
            "reviewers": [
                {
                    "id": r.id,
                    "organisation": r.organisation,
                    "roles": sorted(r.roles),
                    "retired_at": r.retired_at,
                }
                for r in revs
            ],
        }
        click.echo(json.dumps(out, indent=2))
        return
    table = Table(title="organisations")
    for col in ("id", "function", "name", "retired"):
        table.add_column(col)
    for o in orgs:
        table.add_row(o.id, o.function, o.name, o.retired_at or "")
    out_console.print(table)
    table = Table(title="reviewers")
    for col in ("id", "organisation", "roles", "retired"):
        table.add_column(col)
    for r in revs:
        table.add_row(r.id, r.organisation, ", ".join(sorted(r.roles)), r.retired_at or "")
    out_console.print(table)


@register.group("org")
def org() -> None:
    """Add or retire organisations (an organisation's function never changes)."""


@org.command("add")
@click.argument("org_id", metavar="ID")
@click.option("--name", required=True, help="The organisation's name (public).")
@click.option(
    "--function",
    "function",
    required=True,
    type=click.Choice(list(vocabulary()["function"])),
    help="What the organisation does; never changes.",
)
@_db_and_key
def org_add(org_id: str, name: str, function: str, db: str | None, key: str | None) -> None:
    """Register organisation ID (logged). A name naming immigration enforcement needs
    function immigration_enforcement; an id is never reused."""
    _change(db, key, lambda s: s.add_organisation(org_id, name, function, actor="cli"))


@org.command("retire")
@click.argument("org_id", metavar="ID")
@_db_and_key
def org_retire(org_id: str, db: str | None, key: str | None) -> None:
    """Retire organisation ID and its reviewers (logged); their tokens are revoked."""
    _change(db, key, lambda s: s.retire_organisation(org_id, actor="cli"))


@register.group("reviewer")
def reviewer() -> None:
    """Add reviewers, change their roles, retire them."""


@reviewer.command("add")
@click.argument("reviewer_id", metavar="ID")
@click.option("--name", required=True, help="The person's name (kept privately, never logged).")
@click.option("--org", "org_id", required=True, help="The reviewer's organisation id.")
@_ROLE
@_db_and_key
def reviewer_add(
    reviewer_id: str,
    name: str,
    org_id: str,
    roles: tuple[str, ...],
    db: str | None,
    key: str | None,
) -> None:
    """Add reviewer ID at --org with the given roles (logged without the name)."""
    _change(db, key, lambda s: s.add_reviewer(reviewer_id, name, org_id, roles, actor="cli"))


@reviewer.command("roles")
@click.argument("reviewer_id", metavar="ID")
@_ROLE
@_db_and_key
def reviewer_roles(
    reviewer_id: str, roles: tuple[str, ...], db: str | None, key: str | None
) -> None:
    """Replace reviewer ID's roles with the given ones (logged)."""
    _change(db, key, lambda s: s.update_reviewer_roles(reviewer_id, roles, actor="cli"))


@reviewer.command("retire")
@click.argument("reviewer_id", metavar="ID")
@_db_and_key
def reviewer_retire(reviewer_id: str, db: str | None, key: str | None) -> None:
    """Retire reviewer ID (logged): it can no longer review; its tokens are revoked."""
    _change(db, key, lambda s: s.retire_reviewer(reviewer_id, actor="cli"))
