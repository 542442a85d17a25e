"""The organisations register (contract §2): who may ask, who holds data, who reviews.

Facts about requesters (above all their *function*) come from here, never from a request.
Every rule of the register lives in this module, whether the register comes from a TOML
file, from the database or from a change made through the CLI or the API:

- organisation and reviewer ids pass :func:`carewall.ids.check_id` (ASCII, matched whole);
  an id is never reused, not even after its holder is retired;
- names are non-blank printable text (no control, zero-width or other invisible characters);
- an organisation whose name names immigration enforcement must have the function
  ``immigration_enforcement`` (:func:`names_immigration_enforcement` sees through case,
  compatibility forms, look-alike letters and digits, accents and invisible characters, and
  breaks put inside a term), and any other organisation's name must be readable as Latin
  letters (:func:`has_unreadable_letters`), or it could not be checked;
- an organisation's function never changes: a body that changes function is retired and
  registered again under a new id, but never away from ``immigration_enforcement`` under
  its name: a name (:func:`name_key`) an immigration-enforcement body has or had cannot be
  another function's, nor the other way round (:func:`immigration_name_clash`);
- a retired organisation can neither request nor hold data, and a retired reviewer cannot
  review: :attr:`Register.organisations` and :attr:`Register.reviewers` hold only the active
  ones, and :meth:`Register.organisation` refuses a retired id by name.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from carewall.errors import ConflictError, InputError
from carewall.ids import IdKind, is_id
from carewall.policy.names import (
    EXTRA_IMMIGRATION_TERMS,
    IMMIGRATION_TERMS,
    check_name,
    has_unreadable_letters,
    name_key,
    names_immigration_enforcement,
)
from carewall.vocab import vocabulary

__all__ = [
    "DEFAULT_REGISTER_PATH",
    "EXTRA_IMMIGRATION_TERMS",
    "IMMIGRATION_FUNCTION",
    "IMMIGRATION_TERMS",
    "Organisation",
    "Register",
    "Reviewer",
    "check_name",
    "crosses_the_line",
    "has_unreadable_letters",
    "immigration_name_clash",
    "load_register",
    "make_organisation",
    "make_reviewer",
    "name_key",
    "names_immigration_enforcement",
    "parse_register",
    "register_from_tables",
]

DEFAULT_REGISTER_PATH = Path(__file__).with_name("organisations.toml")
IMMIGRATION_FUNCTION: Final = "immigration_enforcement"
# The terms that name immigration enforcement (§2's four and carewall's extra one) are
# IMMIGRATION_TERMS and EXTRA_IMMIGRATION_TERMS in carewall.policy.names.
_MAX_REGISTER_BYTES = 4 * 1024 * 1024
_ID_FIX = "use lowercase ASCII letters, digits and '-' (at most 100 characters, matched whole)"
_TIME_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", re.ASCII)
_ORG_KEYS: Final = frozenset({"id", "name", "function", "retired_at"})
_REVIEWER_KEYS: Final = frozenset({"id", "name", "organisation", "roles", "retired_at"})


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str
    function: str
    retired_at: str | None = None  # RFC 3339 UTC; None while active


@dataclass(frozen=True)
class Reviewer:
    id: str
    name: str
    organisation: str
    roles: frozenset[str]
    retired_at: str | None = None  # RFC 3339 UTC; None while active


def _field(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _shown(value: object, kind: IdKind = "vocab") -> str:
    # Echo a value only when it is a well-formed id: anything else may be free text.
    ok = isinstance(value, str) and len(value) <= 100 and is_id(value, kind)
    return f" {value!r}" if ok else ""


# ----- single records --------------------------------------------------------------------


def _id(value: object, kind: IdKind, field: str) -> str:
    if not isinstance(value, str):
        raise InputError("must be a string", field=field, fix=_ID_FIX)
    if not is_id(value, kind):
        raise InputError(f"invalid id: not a valid {kind} id", field=field, fix=_ID_FIX)
    return value


def _retired_at(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.isascii() or not _TIME_RE.fullmatch(value):
        raise InputError(
            "must be an RFC 3339 UTC time",
            field=field,
            fix='write retired_at = "2026-01-31T12:00:00Z", or leave it out while active',
        )
    return value


def make_organisation(
    id: object,
    name: object,
    function: object,
    retired_at: object = None,
    *,
    where: str = "",
) -> Organisation:
    """A checked organisation; errors name ``<where>.<field>`` (or the bare field)."""
    org_id = _id(id, "organisation", _field(where, "id"))
    functions = vocabulary()["function"]
    if not isinstance(function, str) or function not in functions:
        raise InputError(
            f"unknown function{_shown(function)}",
            field=_field(where, "function"),
            fix=f"one of: {', '.join(functions)}",
        )
    # The guard runs on any string before the name's own checks, so a disguised name
    # ('Home\u200bOffice') is reported as what it is.
    if (
        isinstance(name, str)
        and function != IMMIGRATION_FUNCTION
        and names_immigration_enforcement(name)
    ):
        raise InputError(
            "the name names immigration enforcement, so the function must be "
            f"{IMMIGRATION_FUNCTION}",
            field=_field(where, "function"),
            fix=f'set function = "{IMMIGRATION_FUNCTION}"; an organisation whose name '
            "contains immigration, border force, visas or home office (contract §2), or "
            "otherwise names that department or one of its border or visa bodies, is an "
            "immigration-enforcement body",
        )
    if isinstance(name, str) and function != IMMIGRATION_FUNCTION and has_unreadable_letters(name):
        raise InputError(
            "the name has letters carewall cannot read as Latin, so it cannot be checked "
            "against the immigration-enforcement terms",
            field=_field(where, "name"),
            fix="write the organisation's name in Latin letters, as its English or Welsh name",
        )
    checked = check_name(name, field=_field(where, "name"))
    return Organisation(
        org_id, checked, function, _retired_at(retired_at, _field(where, "retired_at"))
    )


def make_reviewer(
    id: object,
    name: object,
    organisation: object,
    roles: object,
    retired_at: object = None,
    *,
    where: str = "",
) -> Reviewer:
    """A checked reviewer (its organisation is checked against a register by the caller)."""
    rev_id = _id(id, "reviewer", _field(where, "id"))
    checked = check_name(name, field=_field(where, "name"))
    org = _id(organisation, "organisation", _field(where, "organisation"))
    return Reviewer(
        rev_id,
        checked,
        org,
        _roles(roles, _field(where, "roles")),
        _retired_at(retired_at, _field(where, "retired_at")),
    )


def _roles(roles: object, field: str) -> frozenset[str]:
    allowed = vocabulary()["role"]
    if (
        not isinstance(roles, (list, tuple, frozenset, set))
        or not roles
        or not all(isinstance(r, str) for r in roles)
    ):
        raise InputError(
            "must be a non-empty list of role ids",
            field=field,
            fix=f"e.g. roles = [{', '.join(repr(r) for r in allowed)}]",
        )
    for role in roles:
        if role not in allowed:
            raise InputError(
                f"unknown role{_shown(role)}", field=field, fix=f"one of: {', '.join(allowed)}"
            )
    return frozenset(roles)


# ----- the register ----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Register:
    """A validated register. Compared by identity: the engine caches per register.

    ``organisations`` and ``reviewers`` hold the active ones only, so nothing that walks
    them can pick a retired one by accident; the retired are kept apart, by id, because
    ids are never reused and old requests and log entries still name them.
    """

    organisations: dict[str, Organisation] = field(default_factory=dict)
    reviewers: dict[str, Reviewer] = field(default_factory=dict)
    retired_organisations: dict[str, Organisation] = field(default_factory=dict)
    retired_reviewers: dict[str, Reviewer] = field(default_factory=dict)

    def organisation(self, org_id: str, *, field_name: str) -> Organisation:
        """The active organisation ``org_id``, or an InputError naming ``field_name``."""
        org = self.organisations.get(org_id)
        if org is not None:
            return org
        if org_id in self.retired_organisations:
            raise InputError(
                f"organisation{_shown(org_id, 'organisation')} is retired: it can neither "
                "request nor hold data",
                field=field_name,
                fix="use the id of an active organisation (a body that changed function is "
                "registered again under a new id)",
            )
        raise InputError(
            f"organisation{_shown(org_id, 'organisation')} is not in the organisations register",
            field=field_name,
            fix="use the id of a registered organisation, or add it to the register",
        )

    def reviewer(self, reviewer_id: str, *, field_name: str) -> Reviewer:
        """The active reviewer ``reviewer_id``, or an InputError naming ``field_name``."""
        rev = self.reviewers.get(reviewer_id)
        if rev is not None:
            return rev
        if reviewer_id in self.retired_reviewers:
            raise InputError(
                f"reviewer{_shown(reviewer_id, 'reviewer')} is retired and cannot review",
                field=field_name,
                fix="use the id of an active reviewer",
            )
        raise InputError(
            f"reviewer{_shown(reviewer_id, 'reviewer')} is not in the organisations register",
            field=field_name,
            fix="use the id of a registered reviewer, or add the reviewer first",
        )

    def any_organisation(self, org_id: str) -> Organisation | None:
        """The organisation ``org_id``, active or retired (for reading old records)."""
        return self.organisations.get(org_id) or self.retired_organisations.get(org_id)

    def function_of(self, org_id: str) -> str | None:
        """The function of ``org_id``, active or retired (it never changes)."""
        org = self.any_organisation(org_id)
        return org.function if org else None

    # ----- changes: each returns a new register, the rules checked here and only here ---

    def with_organisation(self, org: Organisation) -> Register:
        """This register plus ``org`` (an id is never reused, even once retired)."""
        org = make_organisation(org.id, org.name, org.function)
        if org.id in self.organisations or org.id in self.retired_organisations:
            retired = org.id in self.retired_organisations
            raise ConflictError(
                "the organisation id is already "
                + ("used by a retired organisation" if retired else "registered"),
                field="id",
                fix="ids are never reused and an organisation's function never changes: "
                "register the body under a new id",
            )
        clash = immigration_name_clash(
            org, [*self.organisations.values(), *self.retired_organisations.values()]
        )
        if clash is not None:
            raise ConflictError(_CLASH_MESSAGE, field="name", fix=_clash_fix(clash, org.function))
        return _build(
            [*self.organisations.values(), org],
            self.reviewers.values(),
            self.retired_organisations.values(),
            self.retired_reviewers.values(),
        )

    def retiring_organisation(self, org_id: str, at: str) -> Register:
        """This register with ``org_id`` and all its reviewers retired at ``at``."""
        if org_id in self.retired_organisations:
            raise ConflictError(
                "the organisation is already retired", field="id", fix="nothing to do"
            )
        org = self.organisation(org_id, field_name="id")
        _retired_at(at, "retired_at")
        reviewers = [r for r in self.reviewers.values() if r.organisation != org_id]
        retired_now = [
            replace(r, retired_at=at) for r in self.reviewers.values() if r.organisation == org_id
        ]
        return _build(
            [o for o in self.organisations.values() if o.id != org_id],
            reviewers,
            [*self.retired_organisations.values(), replace(org, retired_at=at)],
            [*self.retired_reviewers.values(), *retired_now],
        )

    def with_reviewer(self, rev: Reviewer) -> Register:
        """This register plus ``rev`` (at an active organisation; ids never reused)."""
        if rev.id in self.reviewers or rev.id in self.retired_reviewers:
            raise ConflictError(
                "the reviewer id is already "
                + ("used by a retired reviewer" if rev.id in self.retired_reviewers else "used"),
                field="id",
                fix="ids are never reused: choose a new reviewer id",
            )
        rev = make_reviewer(rev.id, rev.name, rev.organisation, rev.roles)
        self.organisation(rev.organisation, field_name="organisation")
        return _build(
            self.organisations.values(),
            [*self.reviewers.values(), rev],
            self.retired_organisations.values(),
            self.retired_reviewers.values(),
        )

    def with_roles(self, reviewer_id: str, roles: Iterable[str]) -> Register:
        """This register with the active reviewer's roles replaced by ``roles``."""
        if reviewer_id in self.retired_reviewers:
            raise ConflictError(
                "the reviewer is retired; its roles no longer change",
                field="id",
                fix="add the person again under a new reviewer id",
            )
        rev = self.reviewer(reviewer_id, field_name="id")
        new = replace(rev, roles=_roles(list(roles), "roles"))
        return _build(
            self.organisations.values(),
            [new if r.id == reviewer_id else r for r in self.reviewers.values()],
            self.retired_organisations.values(),
            self.retired_reviewers.values(),
        )

    def retiring_reviewer(self, reviewer_id: str, at: str) -> Register:
        """This register with the active reviewer ``reviewer_id`` retired at ``at``."""
        if reviewer_id in self.retired_reviewers:
            raise ConflictError("the reviewer is already retired", field="id", fix="nothing to do")
        rev = self.reviewer(reviewer_id, field_name="id")
        _retired_at(at, "retired_at")
        return _build(
            self.organisations.values(),
            [r for r in self.reviewers.values() if r.id != reviewer_id],
            self.retired_organisations.values(),
            [*self.retired_reviewers.values(), replace(rev, retired_at=at)],
        )


_CLASH_MESSAGE: Final = (
    "the name is one an immigration-enforcement body has in the register (active or "
    "retired), and the functions differ"
)


def _clash_fix(other: Organisation, function: str) -> str:
    if function == IMMIGRATION_FUNCTION:
        return (
            f"{other.id!r} has that name with the function {other.function!r}: give the "
            "immigration-enforcement body its own name"
        )
    return (
        f"{other.id!r} is an immigration-enforcement body of that name; a body registered "
        f"again under a new id stays one: register it with function {IMMIGRATION_FUNCTION!r}"
    )


def immigration_name_clash(
    org: Organisation, others: Iterable[Organisation]
) -> Organisation | None:
    """The body among ``others`` that shares ``org``'s name (:func:`name_key`) when one of
    the two is an immigration-enforcement body and the other is not, else None.

    Contract §2 lets a body that changes function be retired and registered again under a
    new id; without this, an immigration-enforcement body could come back, under its own
    name, as police.
    """
    for other in others:
        if crosses_the_line(org.name, org.function, other.name, other.function):
            return other
    return None


def crosses_the_line(name: str, function: str, other_name: str, other_function: str) -> bool:
    """Whether two bodies share a name (:func:`name_key`) across the immigration-enforcement
    line: one is an immigration-enforcement body and the other is not (the register's
    rule, and the auditor's)."""
    if (function == IMMIGRATION_FUNCTION) == (other_function == IMMIGRATION_FUNCTION):
        return False
    return name_key(name) == name_key(other_name)


def _build(
    orgs: Iterable[Organisation],
    reviewers: Iterable[Reviewer],
    retired_orgs: Iterable[Organisation],
    retired_reviewers: Iterable[Reviewer],
) -> Register:
    return Register(
        {o.id: o for o in orgs},
        {r.id: r for r in reviewers},
        {o.id: o for o in retired_orgs},
        {r.id: r for r in retired_reviewers},
    )


# ----- parsing ---------------------------------------------------------------------------


def _check_keys(table: Any, allowed: frozenset[str] | set[str], where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise InputError("must be a table", field=where, fix="write it as [[...]] with keys")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise InputError(
            f"unknown key{_shown(unknown[0])}",
            field=f"{where}.{unknown[0]}" if _shown(unknown[0]) else where,
            fix=f"allowed keys: {', '.join(sorted(allowed))}",
        )
    return table


def _required(table: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise InputError(f"missing {key!r}", field=f"{where}.{key}", fix=f'add {key} = "..."')
    return table[key]


def register_from_tables(orgs_raw: Sequence[Any], revs_raw: Sequence[Any]) -> Register:
    """A register from ``[[organisation]]`` and ``[[reviewer]]`` tables (file or database).

    InputError names the bad field as ``organisation[i].<key>`` or ``reviewer[i].<key>``.
    """
    if not orgs_raw:
        raise InputError(
            "the register has no organisations", field="organisation", fix="add [[organisation]]"
        )
    active: dict[str, Organisation] = {}
    retired: dict[str, Organisation] = {}
    for i, table in enumerate(orgs_raw):
        where = f"organisation[{i}]"
        t = _check_keys(table, _ORG_KEYS, where)
        org = make_organisation(
            _required(t, "id", where),
            _required(t, "name", where),
            _required(t, "function", where),
            t.get("retired_at"),
            where=where,
        )
        if org.id in active or org.id in retired:
            raise InputError(
                f"duplicate id {org.id!r}",
                field=f"{where}.id",
                fix="ids must be unique, and are never reused after retirement",
            )
        clash = immigration_name_clash(org, [*active.values(), *retired.values()])
        if clash is not None:
            raise InputError(
                _CLASH_MESSAGE, field=f"{where}.name", fix=_clash_fix(clash, org.function)
            )
        (retired if org.retired_at else active)[org.id] = org
    reviewers: dict[str, Reviewer] = {}
    retired_reviewers: dict[str, Reviewer] = {}
    for i, table in enumerate(revs_raw):
        where = f"reviewer[{i}]"
        t = _check_keys(table, _REVIEWER_KEYS, where)
        rev = make_reviewer(
            _required(t, "id", where),
            _required(t, "name", where),
            _required(t, "organisation", where),
            t.get("roles"),
            t.get("retired_at"),
            where=where,
        )
        if rev.id in reviewers or rev.id in retired_reviewers:
            raise InputError(
                f"duplicate id {rev.id!r}",
                field=f"{where}.id",
                fix="ids must be unique, and are never reused after retirement",
            )
        if rev.organisation not in active and rev.organisation not in retired:
            raise InputError(
                f"organisation {rev.organisation!r} is not in the register",
                field=f"{where}.organisation",
                fix="use the id of an [[organisation]] above",
            )
        if rev.retired_at is None and rev.organisation in retired:
            raise InputError(
                f"organisation {rev.organisation!r} is retired",
                field=f"{where}.organisation",
                fix="a reviewer at a retired organisation must be retired too (add retired_at)",
            )
        (retired_reviewers if rev.retired_at else reviewers)[rev.id] = rev
    return Register(active, reviewers, retired, retired_reviewers)


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
    return register_from_tables(orgs_raw, revs_raw)


def load_register(path: str | Path) -> Register:
    """Read and validate the register file at ``path``."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(
            f"cannot read the register file: {e.strerror}",
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
