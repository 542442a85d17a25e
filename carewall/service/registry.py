"""The organisations register kept in the database, validated by the policy's own parser.

The register is rendered back to TOML and parsed with :func:`parse_register`, so a register
edited through the service obeys exactly the rules of a register file (ids, functions,
roles, reviewers' organisations) and there is one validator, not two.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from carewall.policy import Register, parse_register
from carewall.service import logentries as le
from carewall.service import tables as t

__all__ = [
    "holder_key",
    "read_register",
    "register_entries",
    "render_register",
    "write_register",
]


def _q(s: str) -> str:
    # A JSON string is a valid TOML basic string for everything json.dumps emits.
    return json.dumps(s, ensure_ascii=True)


def render_register(
    orgs: Iterable[tuple[str, str, str]], reviewers: Iterable[tuple[str, str, str, list[str]]]
) -> str:
    out: list[str] = []
    for oid, name, function in orgs:
        out += ["[[organisation]]", f"id = {_q(oid)}", f"name = {_q(name)}"]
        out += [f"function = {_q(function)}", ""]
    for rid, name, org, roles in reviewers:
        out += ["[[reviewer]]", f"id = {_q(rid)}", f"name = {_q(name)}"]
        out += [f"organisation = {_q(org)}", f"roles = [{', '.join(_q(r) for r in roles)}]", ""]
    return "\n".join(out)


def read_register(conn: Connection) -> Register:
    orgs = conn.execute(
        sa.select(
            t.organisations.c.id, t.organisations.c.name, t.organisations.c.function
        ).order_by(t.organisations.c.id)
    ).all()
    revs = conn.execute(sa.select(t.reviewers).order_by(t.reviewers.c.id)).all()
    return parse_register(
        render_register(
            [(o.id, o.name, o.function) for o in orgs],
            [(r.id, r.name, r.organisation, json.loads(r.roles)) for r in revs],
        )
    )


def write_register(conn: Connection, register: Register) -> None:
    """Insert every organisation and reviewer not yet stored (with a holder key each)."""
    have_orgs = set(conn.execute(sa.select(t.organisations.c.id)).scalars())
    have_revs = set(conn.execute(sa.select(t.reviewers.c.id)).scalars())
    for org in register.organisations.values():
        if org.id not in have_orgs:
            conn.execute(
                t.organisations.insert().values(id=org.id, name=org.name, function=org.function)
            )
            holder_key(conn, org.id)
    for rev in register.reviewers.values():
        if rev.id not in have_revs:
            conn.execute(
                t.reviewers.insert().values(
                    id=rev.id,
                    name=rev.name,
                    organisation=rev.organisation,
                    roles=json.dumps(sorted(rev.roles)),
                )
            )


def register_entries(register: Register, time: str) -> list[dict[str, Any]]:
    """The public ``organisation`` and ``reviewer`` entries for a whole register (at init)."""
    out: list[dict[str, Any]] = [
        dict(le.organisation_entry(o.id, o.name, o.function, "add", time))
        for o in register.organisations.values()
    ]
    out += [
        dict(le.reviewer_entry(r.id, r.organisation, sorted(r.roles), "add", time))
        for r in register.reviewers.values()
    ]
    return out


def holder_key(conn: Connection, org_id: str) -> bytes:
    """The holder's commitment key, created on first use inside the caller's transaction."""
    key = conn.execute(
        sa.select(t.holder_keys.c.key).where(t.holder_keys.c.organisation == org_id)
    ).scalar_one_or_none()
    if key is None:
        key = secrets.token_bytes(32)
        conn.execute(t.holder_keys.insert().values(organisation=org_id, key=key))
    return bytes(key)
