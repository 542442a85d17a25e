"""The organisations register kept in the database, validated by the policy's own rules.

Rows are read back through :func:`register_from_tables`, so a register stored or changed
through the service obeys exactly the rules of a register file (ids, names, functions,
roles, reviewers' organisations, retirement) and there is one validator, not two. Every
change is written as the difference between two registers, and the same difference gives
the public ``organisation`` and ``reviewer`` entries, so the rows and the log cannot differ.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from carewall.policy import Register
from carewall.policy.register import Organisation, Reviewer, register_from_tables
from carewall.service import logentries as le
from carewall.service import tables as t

__all__ = [
    "AdminRecord",
    "RegisterEntry",
    "admin_log",
    "change_entries",
    "holder_key",
    "read_register",
    "record_admin",
    "register_entries",
    "render_register",
    "revoke_tokens_in",
    "write_changes",
    "write_register",
]

# The API's token table (migration 0003_api), described here only to revoke the tokens
# of what the register retires, in the same transaction.
_api_tokens = sa.table(
    "api_tokens",
    sa.column("id", sa.String),
    sa.column("organisation", sa.String),
    sa.column("role", sa.String),
    sa.column("reviewer", sa.String),
    sa.column("revoked_at", sa.String),
)


def _q(s: str) -> str:
    # A JSON string is a valid TOML basic string for everything json.dumps emits.
    return json.dumps(s, ensure_ascii=True)


def render_register(register: Register) -> str:
    """The whole register, retired entries included, as a register file (TOML)."""
    out: list[str] = []
    orgs = [*register.organisations.values(), *register.retired_organisations.values()]
    for o in sorted(orgs, key=lambda o: o.id):
        out += ["[[organisation]]", f"id = {_q(o.id)}", f"name = {_q(o.name)}"]
        out += [f"function = {_q(o.function)}"]
        out += [f"retired_at = {_q(o.retired_at)}"] if o.retired_at else []
        out += [""]
    revs = [*register.reviewers.values(), *register.retired_reviewers.values()]
    for r in sorted(revs, key=lambda r: r.id):
        out += ["[[reviewer]]", f"id = {_q(r.id)}", f"name = {_q(r.name)}"]
        out += [f"organisation = {_q(r.organisation)}"]
        out += [f"roles = [{', '.join(_q(x) for x in sorted(r.roles))}]"]
        out += [f"retired_at = {_q(r.retired_at)}"] if r.retired_at else []
        out += [""]
    return "\n".join(out)


def _table(row: Mapping[Any, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {k: row[k] for k in keys if row[k] is not None}


def read_register(conn: Connection) -> Register:
    """The stored register, checked by the register's own rules."""
    orgs = conn.execute(sa.select(t.organisations).order_by(t.organisations.c.id)).mappings().all()
    revs = conn.execute(sa.select(t.reviewers).order_by(t.reviewers.c.id)).mappings().all()
    return register_from_tables(
        [_table(o, ("id", "name", "function", "retired_at")) for o in orgs],
        [
            {
                **_table(r, ("id", "name", "organisation", "retired_at")),
                "roles": json.loads(r["roles"]),
            }
            for r in revs
        ],
    )


def _all_orgs(register: Register) -> dict[str, Organisation]:
    return {**register.organisations, **register.retired_organisations}


def _all_reviewers(register: Register) -> dict[str, Reviewer]:
    return {**register.reviewers, **register.retired_reviewers}


def write_register(conn: Connection, register: Register) -> None:
    """Store a whole register in an empty database (at init), with a holder key each."""
    write_changes(conn, Register(), register)


def write_changes(conn: Connection, before: Register, after: Register) -> None:
    """Store what changed from ``before`` to ``after``: new rows, new roles, retirements."""
    old_orgs, old_revs = _all_orgs(before), _all_reviewers(before)
    for org in _all_orgs(after).values():
        was = old_orgs.get(org.id)
        if was is None:
            conn.execute(
                t.organisations.insert().values(
                    id=org.id, name=org.name, function=org.function, retired_at=org.retired_at
                )
            )
            holder_key(conn, org.id)
        elif was.retired_at != org.retired_at:
            conn.execute(
                t.organisations.update()
                .where(t.organisations.c.id == org.id)
                .values(retired_at=org.retired_at)
            )
    for rev in _all_reviewers(after).values():
        roles = json.dumps(sorted(rev.roles))
        prior = old_revs.get(rev.id)
        if prior is None:
            conn.execute(
                t.reviewers.insert().values(
                    id=rev.id,
                    name=rev.name,
                    organisation=rev.organisation,
                    roles=roles,
                    retired_at=rev.retired_at,
                )
            )
        elif prior.roles != rev.roles or prior.retired_at != rev.retired_at:
            conn.execute(
                t.reviewers.update()
                .where(t.reviewers.c.id == rev.id)
                .values(roles=roles, retired_at=rev.retired_at)
            )


@dataclass(frozen=True)
class RegisterEntry:
    """One public register entry, before it has a log index."""

    kind: Literal["organisation", "reviewer"]
    id: str
    organisation: str  # the organisation itself, or the reviewer's
    change: Literal["add", "update", "retire"]
    entry: dict[str, Any]


def change_entries(before: Register, after: Register, time: str) -> list[RegisterEntry]:
    """The ``organisation`` and ``reviewer`` entries for what changed, in a fixed order.

    Additions first (organisations, then their reviewers), then role updates, then
    retirements (reviewers before their organisation), so a reader replaying the log never
    meets a reviewer at an organisation it does not know yet; within each, register order.
    """
    old_orgs, old_revs = _all_orgs(before), _all_reviewers(before)
    new_orgs, new_revs = _all_orgs(after), _all_reviewers(after)
    out: list[RegisterEntry] = []

    def org(o: Organisation, change: Literal["add", "retire"]) -> None:
        e = dict(le.organisation_entry(o.id, o.name, o.function, change, time))
        out.append(RegisterEntry("organisation", o.id, o.id, change, e))

    def rev(r: Reviewer, change: Literal["add", "update", "retire"]) -> None:
        e = dict(le.reviewer_entry(r.id, r.organisation, sorted(r.roles), change, time))
        out.append(RegisterEntry("reviewer", r.id, r.organisation, change, e))

    for o in new_orgs.values():
        if o.id not in old_orgs:
            org(o, "add")
    for r in new_revs.values():
        if r.id not in old_revs:
            rev(r, "add")
    for r in new_revs.values():
        prior = old_revs.get(r.id)
        if prior is not None and prior.roles != r.roles:
            rev(r, "update")
    for r in new_revs.values():
        prior = old_revs.get(r.id)
        if r.retired_at and (prior is None or not prior.retired_at):
            rev(r, "retire")
    for o in new_orgs.values():
        was = old_orgs.get(o.id)
        if o.retired_at and (was is None or not was.retired_at):
            org(o, "retire")
    return out


def register_entries(register: Register, time: str) -> list[dict[str, Any]]:
    """The public ``organisation`` and ``reviewer`` entries for a whole register (at init)."""
    return [c.entry for c in change_entries(Register(), register, time)]


def revoke_tokens_in(
    conn: Connection,
    time: str,
    *,
    organisation: str | None = None,
    reviewer: str | None = None,
    roles_kept: frozenset[str] | None = None,
) -> list[tuple[str, str]]:
    """Revoke the live tokens of a retired organisation or reviewer; ``(id, org)`` each.

    With ``roles_kept``, only the reviewer's tokens for roles it no longer holds.
    """
    query = sa.select(_api_tokens.c.id, _api_tokens.c.organisation, _api_tokens.c.role).where(
        _api_tokens.c.revoked_at.is_(None)
    )
    if organisation is not None:
        query = query.where(_api_tokens.c.organisation == organisation)
    if reviewer is not None:
        query = query.where(_api_tokens.c.reviewer == reviewer)
    rows = [r for r in conn.execute(query) if roles_kept is None or r.role not in roles_kept]
    for r in rows:
        conn.execute(_api_tokens.update().where(_api_tokens.c.id == r.id).values(revoked_at=time))
    return [(r.id, r.organisation) for r in rows]


# ----- the admin record (private: what administrators did) -------------------------------


@dataclass(frozen=True)
class AdminRecord:
    time: str
    organisation: str
    actor: str  # a token id, "cli", or "service"
    action: str
    detail: dict[str, Any]


def record_admin(
    conn: Connection,
    time: str,
    organisation: str,
    actor: str,
    action: str,
    detail: Mapping[str, Any],
) -> None:
    """Add a row to ``svc_admin_log``. ``detail`` holds ids and indexes only, never a secret
    or a name."""
    conn.execute(
        t.admin_log.insert().values(
            time=time,
            organisation=organisation,
            actor=actor,
            action=action,
            detail=json.dumps(dict(detail), sort_keys=True),
        )
    )


def admin_log(conn: Connection, organisation: str | None = None) -> list[AdminRecord]:
    """The admin record, oldest first; only ``organisation``'s rows when given."""
    query = sa.select(t.admin_log).order_by(t.admin_log.c.id)
    if organisation is not None:
        query = query.where(t.admin_log.c.organisation == organisation)
    return [
        AdminRecord(
            time=r.time,
            organisation=r.organisation,
            actor=r.actor,
            action=r.action,
            detail=json.loads(r.detail) if r.detail else {},
        )
        for r in conn.execute(query)
    ]


def holder_key(conn: Connection, org_id: str) -> bytes:
    """The holder's commitment key, created on first use inside the caller's transaction."""
    key = conn.execute(
        sa.select(t.holder_keys.c.key).where(t.holder_keys.c.organisation == org_id)
    ).scalar_one_or_none()
    if key is None:
        key = secrets.token_bytes(32)
        conn.execute(t.holder_keys.insert().values(organisation=org_id, key=key))
    return bytes(key)
