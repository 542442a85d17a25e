"""Every entry's bytes and exact shape: canonical JSON of a known kind, per its JSON Schema.

An entry MUST be RFC 8785 canonical JSON (https://www.rfc-editor.org/rfc/rfc8785) of an
object whose ``kind`` is one this reader knows (a reader refuses a kind it does not know,
contract §6), and MUST match that kind's closed schema from
:func:`carewall.entry_schema.entry_schema` (JSON Schema 2020-12, validated by
``jsonschema-rs``, whose ECMA-262 anchors match ids whole). Messages name the field and
what is wrong with it, never the value, which in a forged log could be anything.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import cache, lru_cache
from typing import Any

import jsonschema_rs

from carewall.entries import KINDS
from carewall.entry_schema import entry_schema
from carewall.ids import PATTERNS
from carewall.ledger.canonical import CanonicalError, parse_canonical

__all__ = ["ShapeError", "check_shape"]

_SAFE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,39}", re.ASCII)
_WHAT: dict[str, str] = {
    "vocab": "vocabulary id",
    "organisation": "organisation id",
    "reviewer": "reviewer id",
    "rule": "rule id",
    "offence": "offence id",
    "request": "request id",
    "commitment": "commitment or hash (64 lowercase hex digits)",
    "hash": "commitment or hash (64 lowercase hex digits)",
    "sha256": "hash ('sha256:' and 64 lowercase hex digits)",
}
# Organisation and reviewer ids share a pattern: the field tells which was meant.
_PATTERN_NAMES = {f"^(?:{p})$": _WHAT[kind] for kind, p in reversed(PATTERNS.items())}
_MAX_ERRORS = 3
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", re.ASCII)


class ShapeError(Exception):
    """An entry that is not a well-formed entry of a known kind; ``kind`` is "?" if unknown."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@cache
def _validators() -> dict[str, jsonschema_rs.Validator]:
    defs = entry_schema()["$defs"]
    return {k: jsonschema_rs.Draft202012Validator(defs[k]) for k in KINDS}


def _name(value: object) -> str:
    """A key or id as written, if it looks like one; otherwise a placeholder."""
    if isinstance(value, str) and _SAFE_NAME.fullmatch(value):
        return repr(value)
    return "(a name that is not an identifier)"


def _path(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _id_kind(pattern: str, where: str, entry_kind: str) -> str:
    what = _PATTERN_NAMES.get(pattern, "value of the required form")
    if what == _WHAT["organisation"] and (
        where.endswith("reviewer") or (entry_kind, where) == ("reviewer", "id")
    ):
        return _WHAT["reviewer"]
    return what


def _describe(err: jsonschema_rs.ValidationError, entry_kind: str) -> str:
    kind = err.kind
    where = _path(err.instance_path)
    field = f"field {where!r}" if where else "the entry"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        inner = f" in {where!r}" if where else ""
        return f"lacks the field {_name(kind.property)}{inner}"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
        names = ", ".join(_name(u) for u in kind.unexpected)
        inner = f" in {where!r}" if where else ""
        return f"has an unknown field {names}{inner}"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Type):
        return f"{field} has the wrong type (expected {' or '.join(kind.types)})"
    if isinstance(
        kind, jsonschema_rs.ValidationErrorKind.Enum | jsonschema_rs.ValidationErrorKind.Constant
    ):
        return f"{field} is not one of its allowed values (ids are lowercase, matched whole)"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Pattern):
        what = _id_kind(kind.pattern, where, entry_kind)
        return f"{field} is not a valid {what} (ASCII, matched whole)"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.PropertyNames):
        return f"{field} has a key that is not a category id"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AnyOf):
        return f"{field} is none of the forms it may take"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.UniqueItems):
        return f"{field} lists an item twice"
    return f"{field} breaks the schema's {err.kind.name!r} rule"


@lru_cache(maxsize=64)
def _real_time(value: str) -> bool:
    # Entries written together share their time: a pure verdict on the string, remembered
    # for the last few times seen (about half of all entries ask again).
    try:
        datetime.fromisoformat(value[:-1])
    except ValueError:
        return False
    return _TIME_RE.fullmatch(value) is not None


def _parse(data: bytes) -> dict[str, Any]:
    """The entry as an object, checked to be exactly its RFC 8785 canonical form.

    Entries hold integers only, so any fraction or exponent is refused outright.
    """
    try:
        return parse_canonical(data, floats=False)
    except CanonicalError as e:
        reason = str(e)
        if reason.startswith("is "):
            raise ShapeError("?", reason) from e
        raise ShapeError("?", f"is not RFC 8785 canonical JSON: {reason}") from e


def _real_date(value: object) -> bool:
    try:
        date.fromisoformat(str(value))
    except ValueError:
        return False
    return True


def check_shape(data: bytes) -> dict[str, Any]:
    """The entry as an object, or :class:`ShapeError` saying what is wrong with it."""
    obj = _parse(data)
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ShapeError(
            "?",
            "has no kind"
            if kind is None
            else "has a kind this reader does not know; "
            "a reader refuses an unknown kind rather than skip it",
        )
    validator = _validators()[kind]
    # is_valid stops at the first error and builds none: the common case pays only for it.
    errors = (
        [] if validator.is_valid(obj) else [_describe(e, kind) for e in validator.iter_errors(obj)]
    )
    if errors:
        more = f" (and {len(errors) - _MAX_ERRORS} more)" if len(errors) > _MAX_ERRORS else ""
        raise ShapeError(kind, "; ".join(errors[:_MAX_ERRORS]) + more)
    if not _real_time(obj["time"]):
        raise ShapeError(kind, "field 'time' is not a real date and time")
    if kind == "deferral" and obj["review_date"] is not None and not _real_date(obj["review_date"]):
        raise ShapeError(kind, "field 'review_date' is not a real date")
    return obj
