"""The checks the request document's two validators share, and the wording of their errors.

:mod:`carewall.policy.request` (the pydantic models the service's API schema comes from)
and :mod:`carewall.policy.document` (the same validator in plain Python, for start-up and
large requests) both call these, so they cannot drift: decoding the bytes, the vocabulary,
text, date and offence checks the models' field validators call, the wording of every shape
error (:func:`input_error`, which the models' error translation also calls), and the
checks against the register made once the shape is known (:func:`check_request`).

Personal values (subject refs, names, free text) are never echoed; a bad vocabulary or
organisation id is, because the fix is to correct it.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from carewall.errors import FIELD_PART_MAX, InputError
from carewall.ids import is_id
from carewall.policy.offences import (
    UNLISTED_IMMIGRATION_ACT,
    UNLISTED_IMMIGRATION_ACT_FIX,
    unlisted_immigration_act,
)
from carewall.text import TextKind, text_problem
from carewall.vocab import Kind, vocabulary

if TYPE_CHECKING:
    from carewall.policy.register import Register

__all__ = [
    "CRIME_EXEMPTION",
    "MAX_REQUEST_BYTES",
    "TYPE_NAMES",
    "VocabError",
    "check_date",
    "check_object",
    "check_offence",
    "check_received_at",
    "check_request",
    "check_vocab",
    "decode",
    "field_path",
    "input_error",
    "not_blank",
    "storable",
    "unique",
]

MAX_REQUEST_BYTES = 16 * 1024 * 1024
CRIME_EXEMPTION = "dpa2018_sch2_p1_para2_crime"


# ----- the checks both validators run (the models call these from field validators) -----


class VocabError(ValueError):
    """Raised inside validators; carries the fix so the InputError can say what is allowed."""

    def __init__(self, message: str, fix: str, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.index = index  # the list item at fault, when the validator saw a whole list


def check_vocab(kind: Kind, value: str) -> str:
    allowed = vocabulary()[kind]
    if value not in allowed:
        # An id-shaped value is echoed (the fix is to correct it); anything else may be
        # free text such as a name, and is never repeated back.
        shown = f" {value!r}" if is_id(value, "vocab") and len(value) <= 60 else ""
        raise VocabError(f"unknown {kind}{shown}", f"one of: {', '.join(allowed)}")
    return value


def unique(values: list[str], kind: Kind) -> list[str]:
    seen: set[str] = set()
    for i, v in enumerate(values):
        try:
            check_vocab(kind, v)
        except VocabError as e:
            raise VocabError(e.message, e.fix, i) from None
        if v in seen:
            raise VocabError("lists an id twice", "name each id once", i)
        seen.add(v)
    return values


_NOT_COMPARED: Final = str.maketrans("", "", " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f-.")


def same_person_key(ref: str) -> str:
    """A subject ref as compared for duplicates: without case, spaces, dots or hyphens.

    '943 476 5919' and '9434765919', or 'DUP-4471' and 'dup4471', are one person written
    twice; invisible characters (zero-width and other format characters) are dropped too.
    """
    if ref.isascii():  # the usual case, and the fast one for a request of 100,000
        return ref.lower().translate(_NOT_COMPARED)
    folded = unicodedata.normalize("NFKC", ref).casefold()
    return "".join(
        c for c in folded if not (c.isspace() or c in "-.‐‑" or unicodedata.category(c) == "Cf")
    )


def distinct_subjects(refs: list[str]) -> None:
    """Refuse a request that lists one person twice (VocabError with the later index).

    Each listed subject is decided on the facts given for it, so one person listed twice
    could carry contradicting facts (a victim in one place, not in another): the release
    would follow the weaker claim.
    """
    # The usual case, ASCII refs and no duplicate, in one pass over one string (a tenth
    # of the loop's time for 100,000 refs); a ref holding the separator splits into more
    # keys than refs, and goes to the loop like everything else.
    joined = "\x00".join(refs)
    if joined.isascii():
        keys = joined.lower().translate(_NOT_COMPARED).split("\x00")
        if len(keys) == len(refs) and len(set(keys)) == len(keys):
            return
    seen: set[str] = set()
    for i, ref in enumerate(refs):
        key = same_person_key(ref)
        if key in seen:
            raise VocabError(
                "lists the same person twice (refs are compared without case, spaces, dots "
                "or hyphens)",
                "list each person once, with one set of facts",
                i,
            )
        seen.add(key)


def storable(v: str | None, kind: TextKind = "line") -> str | None:
    """Text every database can store (no NUL, no lone surrogate; see carewall.text)."""
    problem = None if v is None else text_problem(v, kind)
    if problem is not None:
        raise VocabError(*problem)
    return v


def not_blank(v: str) -> str:
    if not v.strip():
        raise VocabError("is blank", "give the text, not only spaces")
    return v


def check_date(v: str) -> dt.date:
    """A court order's date, written YYYY-MM-DD."""
    try:
        if len(v) != 10 or v[4] != "-" or v[7] != "-" or not v.isascii():
            raise ValueError(v)
        return dt.date.fromisoformat(v)
    except ValueError:
        raise VocabError("is not a real date", "write it as YYYY-MM-DD") from None


def check_received_at(v: str) -> dt.datetime:
    """When the request was received: RFC 3339 with a time zone."""
    try:
        parsed = dt.datetime.fromisoformat(v)
    except ValueError:
        raise VocabError(
            "is not a date and time", "write RFC 3339, e.g. 2026-11-21T10:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise VocabError("has no time zone", "end it with Z or an offset like +01:00")
    return parsed


def check_offence(v: str | None) -> str | None:
    if v is not None and not is_id(v, "offence"):
        raise VocabError(
            "is not an offence id",
            "use a statute id <act words>_<year>_s<section>[letters][_<subsection>…] in "
            "lowercase ASCII, the section number without leading zeros, e.g. "
            "theft_act_1968_s1 or immigration_act_1971_s24_1_b",
        )
    if v is not None and unlisted_immigration_act(v):
        raise VocabError(UNLISTED_IMMIGRATION_ACT, UNLISTED_IMMIGRATION_ACT_FIX)
    return v


# ----- the wording of every shape error ----------------------------------------------

TYPE_NAMES: Final = {
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "model_type": "an object",
    "dict_type": "an object",
    "int_type": "an integer",
    "datetime_type": "an RFC 3339 date and time string",
    "date_type": "a YYYY-MM-DD date string",
}


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("subjects", 0, "ref")`` -> ``subjects[0].ref``; the empty path is ``request``.

    Each key is cut to FIELD_PART_MAX characters: an unknown key is the caller's own text."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = str(part)[:FIELD_PART_MAX]
            out += f".{key}" if out else key
    return out or "request"


def input_error(
    kind: str,
    field_name: str,
    value: object = None,
    *,
    max_length: object = None,
    cause: object = None,
) -> InputError:
    """The InputError for one shape fault (pydantic's error ``kind``) at ``field_name``."""
    if isinstance(cause, VocabError):
        if cause.index is not None:
            field_name += f"[{cause.index}]"
        return InputError(cause.message, field=field_name, fix=cause.fix)
    if kind == "missing":
        return InputError("is required", field=field_name, fix="add this field")
    if kind == "string_unicode":  # a lone surrogate: no database can store it
        return InputError(
            "contains a lone surrogate (half of a UTF-16 pair), which is not a character",
            field=field_name,
            fix="send the text as valid UTF-8 (a surrogate pair must be complete)",
        )
    if kind == "extra_forbidden":
        return InputError("is not a known field", field=field_name, fix="remove it or fix its name")
    if kind in TYPE_NAMES:
        return InputError(
            f"has the wrong type ({type(value).__name__})",
            field=field_name,
            fix=f"give {TYPE_NAMES[kind]}",
        )
    if kind == "too_short":
        return InputError("must not be empty", field=field_name, fix="give at least one")
    if kind == "string_too_short":
        return InputError("must not be empty", field=field_name, fix="give a value")
    if kind in ("string_too_long", "too_long"):
        return InputError("is too long", field=field_name, fix=f"at most {max_length}")
    # A catch-all that still never echoes the submitted value.
    return InputError(f"is invalid ({kind})", field=field_name, fix="see the request format")


# ----- decoding -------------------------------------------------------------------------


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = dict(pairs)  # in C; the loop below only to name a duplicate
    if len(out) == len(pairs):
        return out
    out = {}
    for key, value in pairs:
        if key in out:
            raise InputError(
                f"the key {key[:60]!r} appears twice in one object",
                field="request",
                fix="give each field once",
            )
        out[key] = value
    return out


# ``json.loads(text, object_pairs_hook=…)`` without a new decoder (and scanner) per call,
# which is what loads builds for any keyword argument. A decoder keeps no state between
# calls: json shares its own default decoder across every caller in the same way.
_DECODER: Final = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys)


def decode(data: bytes | str) -> Any:
    """The JSON value of a request document; InputError for anything that is not JSON."""
    size = len(data)
    if size > MAX_REQUEST_BYTES:
        raise InputError(
            f"the request is too large ({size} bytes)",
            field="request",
            fix=f"keep a request under {MAX_REQUEST_BYTES // (1024 * 1024)} MiB; split it",
        )
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(
                f"not valid UTF-8 (bad byte at offset {e.start})",
                field="request",
                fix="save the file as UTF-8",
            ) from e
    if not data or data.isspace():  # as ``not data.strip()``, without copying the text
        raise InputError("the request is empty", field="request", fix="give a JSON object")
    try:
        if data.startswith("\ufeff"):  # what json.loads refuses before it decodes
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", data, 0)
        return _DECODER.decode(data)
    except json.JSONDecodeError as e:
        raise InputError(
            f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}",
            field="request",
            fix="fix the JSON syntax",
        ) from e
    except RecursionError as e:
        raise InputError("nested too deeply", field="request", fix="give a flat object") from e
    except ValueError as e:
        # json raises a bare ValueError for integer literals past Python's digit limit.
        raise InputError(
            "a number in the request is too long",
            field="request",
            fix="numbers must have at most 4300 digits; ids and refs are strings",
        ) from e


def check_object(raw: Any) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise InputError(
            f"must be a JSON object, not {type(raw).__name__}",
            field="request",
            fix="give one object as in the request format",
        )
    return raw


# ----- the checks against the register, made once the shape is known -------------------


def check_request(
    register: Register,
    *,
    requester: str,
    holder: str,
    bases: set[str],
    court_date: dt.date | None,
    offence: str | None,
    today: dt.date | None,
) -> None:
    """What a well-formed request must also satisfy (``court_date``: None when no order)."""
    register.organisation(requester, field_name="requester")
    register.organisation(holder, field_name="holder")
    if "court_order" in bases and court_date is None:
        raise InputError(
            "the court_order basis is cited but no court order is given",
            field="court_order",
            fix="add court_order with reference, court and date",
        )
    if court_date is not None:
        day = today or dt.datetime.now(dt.UTC).date()
        if court_date > day:
            raise InputError(
                "the court order's date is in the future",
                field="court_order.date",
                fix="give the date the order was made (YYYY-MM-DD, not after today)",
            )
    if CRIME_EXEMPTION in bases and offence is None:
        raise InputError(
            "the crime exemption is cited but no offence is named",
            field="offence",
            fix="name the offence as a statute id, e.g. theft_act_1968_s1",
        )
