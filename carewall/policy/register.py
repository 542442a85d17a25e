"""The organisations register (contract §2): who may ask, who holds data, who reviews.

Facts about requesters (above all their *function*) come from here, never from a request.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carewall.errors import InputError
from carewall.vocab import vocabulary

__all__ = [
    "DEFAULT_REGISTER_PATH",
    "Organisation",
    "Register",
    "Reviewer",
    "load_register",
    "parse_register",
]

DEFAULT_REGISTER_PATH = Path(__file__).with_name("organisations.toml")
ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")
_ID_FIX = "use lowercase letters, digits and '-', at most 100 characters"
_MAX_REGISTER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str
    function: str


@dataclass(frozen=True)
class Reviewer:
    id: str
    name: str
    organisation: str
    roles: frozenset[str]


@dataclass(frozen=True, eq=False)
class Register:
    """A validated register. Compared by identity: the engine caches per register."""

    organisations: dict[str, Organisation] = field(default_factory=dict)
    reviewers: dict[str, Reviewer] = field(default_factory=dict)

    def organisation(self, org_id: str, *, field_name: str) -> Organisation:
        """The registered organisation ``org_id``, or an InputError naming ``field_name``."""
        try:
            return self.organisations[org_id]
        except KeyError:
            raise InputError(
                f"organisation {org_id!r} is not in the organisations register",
                field=field_name,
                fix="use the id of a registered organisation, or add it to the register",
            ) from None


def _str(table: dict[str, Any], key: str, where: str) -> str:
    if key not in table:
        raise InputError(f"missing {key!r}", field=f"{where}.{key}", fix=f'add {key} = "..."')
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise InputError(
            "must be a non-empty string", field=f"{where}.{key}", fix=f'write {key} = "..."'
        )
    return value


def _check_keys(table: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise InputError("must be a table", field=where, fix="write it as [[...]] with keys")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise InputError(
            f"unknown key {unknown[0]!r}",
            field=f"{where}.{unknown[0]}",
            fix=f"allowed keys: {', '.join(sorted(allowed))}",
        )
    return table


def _id(table: dict[str, Any], where: str, seen: set[str]) -> str:
    value = _str(table, "id", where)
    if not ID_RE.match(value):
        raise InputError(f"invalid id {value!r}", field=f"{where}.id", fix=_ID_FIX)
    if value in seen:
        raise InputError(f"duplicate id {value!r}", field=f"{where}.id", fix="ids must be unique")
    seen.add(value)
    return value


def parse_register(text: str) -> Register:
    """Parse and validate a register written in TOML; InputError names the bad field."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"not valid TOML: {e}", field="register", fix="fix the TOML syntax") from e
    _check_keys(raw, {"organisation", "reviewer"}, "register")
    orgs_raw = raw.get("organisation", [])
    revs_raw = raw.get("reviewer", [])
    for key, value in (("organisation", orgs_raw), ("reviewer", revs_raw)):
        if not isinstance(value, list):
            raise InputError("must be an array of tables", field=key, fix=f"write [[{key}]]")
    if not orgs_raw:
        raise InputError(
            "the register has no organisations", field="organisation", fix="add [[organisation]]"
        )
    functions = vocabulary()["function"]
    roles_allowed = vocabulary()["role"]
    orgs: dict[str, Organisation] = {}
    for i, table in enumerate(orgs_raw):
        where = f"organisation[{i}]"
        t = _check_keys(table, {"id", "name", "function"}, where)
        org_id = _id(t, where, set(orgs))
        function = _str(t, "function", where)
        if function not in functions:
            raise InputError(
                f"unknown function {function!r}",
                field=f"{where}.function",
                fix=f"one of: {', '.join(functions)}",
            )
        orgs[org_id] = Organisation(org_id, _str(t, "name", where), function)
    reviewers: dict[str, Reviewer] = {}
    for i, table in enumerate(revs_raw):
        where = f"reviewer[{i}]"
        t = _check_keys(table, {"id", "name", "organisation", "roles"}, where)
        rev_id = _id(t, where, set(reviewers))
        org = _str(t, "organisation", where)
        if org not in orgs:
            raise InputError(
                f"organisation {org!r} is not in the register",
                field=f"{where}.organisation",
                fix="use the id of an [[organisation]] above",
            )
        roles = t.get("roles")
        if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
            raise InputError(
                "must be a non-empty list of role ids",
                field=f"{where}.roles",
                fix=f"e.g. roles = [{', '.join(repr(r) for r in roles_allowed)}]",
            )
        for role in roles:
            if role not in roles_allowed:
                raise InputError(
                    f"unknown role {role!r}",
                    field=f"{where}.roles",
                    fix=f"one of: {', '.join(roles_allowed)}",
                )
        reviewers[rev_id] = Reviewer(rev_id, _str(t, "name", where), org, frozenset(roles))
    return Register(orgs, reviewers)


def load_register(path: str | Path) -> Register:
    """Read and validate the register file at ``path``."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(
            f"cannot read the register {str(p)!r}: {e.strerror}",
            field="orgs",
            fix="give the path of an organisations TOML file",
        ) from e
    if len(data) > _MAX_REGISTER_BYTES:
        raise InputError("the register is too large", field="orgs", fix="keep it under 4 MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError("not valid UTF-8", field="orgs", fix="save the file as UTF-8") from e
    return parse_register(text)
