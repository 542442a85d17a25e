"""The disclosure request document (contract §3): parsed at the boundary, then typed.

Every malformed input becomes one :class:`InputError` that names the field, says what is
wrong and what is allowed. Personal values (subject refs, names, free text) are never
echoed; a bad vocabulary or organisation id is, because the fix is to correct it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from carewall.errors import InputError
from carewall.ids import is_id
from carewall.policy.register import Register
from carewall.text import TextKind, text_problem
from carewall.vocab import Kind, vocabulary

__all__ = [
    "MAX_REQUEST_BYTES",
    "Authoriser",
    "CourtOrder",
    "DisclosureRequest",
    "Officer",
    "Subject",
    "parse_request",
]

MAX_REQUEST_BYTES = 16 * 1024 * 1024
CRIME_EXEMPTION = "dpa2018_sch2_p1_para2_crime"


class _VocabError(ValueError):
    """Raised inside validators; carries the fix so the InputError can say what is allowed."""

    def __init__(self, message: str, fix: str, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.index = index  # the list item at fault, when the validator saw a whole list


def _check(kind: Kind, value: str) -> str:
    allowed = vocabulary()[kind]
    if value not in allowed:
        # An id-shaped value is echoed (the fix is to correct it); anything else may be
        # free text such as a name, and is never repeated back.
        shown = f" {value!r}" if is_id(value, "vocab") and len(value) <= 60 else ""
        raise _VocabError(f"unknown {kind}{shown}", f"one of: {', '.join(allowed)}")
    return value


def _unique(values: list[str], kind: Kind) -> list[str]:
    seen: set[str] = set()
    for i, v in enumerate(values):
        try:
            _check(kind, v)
        except _VocabError as e:
            raise _VocabError(e.message, e.fix, i) from None
        if v in seen:
            raise _VocabError("lists an id twice", "name each id once", i)
        seen.add(v)
    return values


_Text = Field(min_length=1, max_length=500)


def _storable(v: str | None, kind: TextKind = "line") -> str | None:
    """Text every database can store (no NUL, no lone surrogate; see carewall.text)."""
    problem = None if v is None else text_problem(v, kind)
    if problem is not None:
        raise _VocabError(*problem)
    return v


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Officer(_Model):
    name: str = _Text
    role: str | None = Field(default=None, max_length=500)
    contact: str | None = Field(default=None, max_length=500)

    @field_validator("name", "role", "contact")
    @classmethod
    def _line(cls, v: str | None) -> str | None:
        return _storable(v)


class Authoriser(_Model):
    name: str = _Text
    role: str | None = Field(default=None, max_length=500)

    @field_validator("name", "role")
    @classmethod
    def _line(cls, v: str | None) -> str | None:
        return _storable(v)


def _not_blank(v: str) -> str:
    if not v.strip():
        raise _VocabError("is blank", "give the text, not only spaces")
    return v


class CourtOrder(_Model):
    reference: str = _Text
    court: str = _Text
    date: dt.date

    @field_validator("reference", "court")
    @classmethod
    def _text(cls, v: str) -> str:
        # kept as the order was written (made inert wherever shown or exported)
        return _not_blank(_storable(v, "verbatim") or "")

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                if len(v) != 10 or v[4] != "-" or v[7] != "-" or not v.isascii():
                    raise ValueError(v)
                return dt.date.fromisoformat(v)
            except ValueError:
                raise _VocabError("is not a real date", "write it as YYYY-MM-DD") from None
        return v


class Subject(_Model):
    """A person the request is about. Attributes are recorded by the holder at intake."""

    ref: str = Field(min_length=1, max_length=200)
    is_child: bool
    is_victim_or_witness: bool
    # The requester's claim that this person consented; None: the request's consent basis
    # (if any) is the claim. Either way the holder's reviewer confirms it before release.
    consent: bool | None = None

    @field_validator("ref")
    @classmethod
    def _ref(cls, v: str) -> str:
        return _not_blank(_storable(v) or "")


class DisclosureRequest(_Model):
    """A request for personal data (contract §3)."""

    reference: str = Field(min_length=1, max_length=200)
    requester: str = Field(min_length=1, max_length=100)
    officer: Officer | None = None
    authorised_by: Authoriser | None = None
    holder: str = Field(min_length=1, max_length=100)
    purpose: str
    legal_basis: str
    other_bases: list[str] = Field(default_factory=list)
    offence: str | None = None
    court_order: CourtOrder | None = None
    subjects: list[Subject] = Field(min_length=1)
    categories: list[str] = Field(min_length=1)
    onward_recipients: list[str] = Field(default_factory=list)
    necessity: str | None = Field(default=None, max_length=20000)
    prejudice: bool = False
    received_at: dt.datetime | None = None

    @field_validator("reference")
    @classmethod
    def _reference(cls, v: str) -> str:
        return _storable(v) or ""

    @field_validator("necessity")
    @classmethod
    def _necessity(cls, v: str | None) -> str | None:
        return _storable(v, "verbatim")  # kept as written; shown inert (`carewall show`)

    @field_validator("purpose")
    @classmethod
    def _purpose(cls, v: str) -> str:
        return _check("purpose", v)

    @field_validator("legal_basis")
    @classmethod
    def _basis(cls, v: str) -> str:
        return _check("legal_basis", v)

    @field_validator("other_bases")
    @classmethod
    def _bases(cls, v: list[str]) -> list[str]:
        return _unique(v, "legal_basis")

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str]) -> list[str]:
        return _unique(v, "category")

    @field_validator("onward_recipients")
    @classmethod
    def _onward(cls, v: list[str]) -> list[str]:
        return _unique(v, "function")

    @field_validator("offence")
    @classmethod
    def _offence(cls, v: str | None) -> str | None:
        if v is not None and not is_id(v, "offence"):
            raise _VocabError(
                "is not an offence id",
                "use a statute id <act words>_<year>_s<section>[letters][_<subsection>…] in "
                "lowercase ASCII, e.g. theft_act_1968_s1 or immigration_act_1971_s24_1_b",
            )
        return v

    @field_validator("received_at", mode="before")
    @classmethod
    def _received(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                parsed = dt.datetime.fromisoformat(v)
            except ValueError:
                raise _VocabError(
                    "is not a date and time", "write RFC 3339, e.g. 2026-11-21T10:00:00Z"
                ) from None
            if parsed.tzinfo is None:
                raise _VocabError("has no time zone", "end it with Z or an offset like +01:00")
            return parsed
        return v

    @property
    def has_consent(self) -> bool:
        """The request-wide consent claim: ``consent`` as main or other basis."""
        return self.legal_basis == "consent" or "consent" in self.other_bases


_TYPE_NAMES = {
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "model_type": "an object",
    "dict_type": "an object",
    "int_type": "an integer",
    "datetime_type": "an RFC 3339 date and time string",
    "date_type": "a YYYY-MM-DD date string",
}


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _from_validation(e: ValidationError) -> InputError:
    err = e.errors(include_url=False)[0]
    field_name = _loc(tuple(err["loc"])) or "request"
    kind = err["type"]
    ctx = err.get("ctx") or {}
    cause = ctx.get("error")
    if isinstance(cause, _VocabError):
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
    if kind in _TYPE_NAMES:
        return InputError(
            f"has the wrong type ({type(err['input']).__name__})",
            field=field_name,
            fix=f"give {_TYPE_NAMES[kind]}",
        )
    if kind == "too_short":
        return InputError("must not be empty", field=field_name, fix="give at least one")
    if kind in ("string_too_short",):
        return InputError("must not be empty", field=field_name, fix="give a value")
    if kind in ("string_too_long", "too_long"):
        limit = ctx.get("max_length")
        return InputError("is too long", field=field_name, fix=f"at most {limit}")
    # A catch-all that still never echoes the submitted value.
    return InputError(f"is invalid ({kind})", field=field_name, fix="see the request format")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InputError(
                f"the key {key[:60]!r} appears twice in one object",
                field="request",
                fix="give each field once",
            )
        out[key] = value
    return out


def _decode(data: bytes | str) -> Any:
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
    if not data.strip():
        raise InputError("the request is empty", field="request", fix="give a JSON object")
    try:
        return json.loads(data, object_pairs_hook=_no_duplicate_keys)
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


def parse_request(
    data: bytes | str | Mapping[str, Any], register: Register, *, today: dt.date | None = None
) -> DisclosureRequest:
    """Parse and validate a request document against the vocabulary and the register."""
    raw: Any = _decode(data) if isinstance(data, (bytes, str)) else data
    if not isinstance(raw, Mapping):
        raise InputError(
            f"must be a JSON object, not {type(raw).__name__}",
            field="request",
            fix="give one object as in the request format",
        )
    try:
        request = DisclosureRequest.model_validate(raw)
    except ValidationError as e:
        raise _from_validation(e) from e
    register.organisation(request.requester, field_name="requester")
    register.organisation(request.holder, field_name="holder")
    bases = {request.legal_basis, *request.other_bases}
    if "court_order" in bases and request.court_order is None:
        raise InputError(
            "the court_order basis is cited but no court order is given",
            field="court_order",
            fix="add court_order with reference, court and date",
        )
    if request.court_order is not None:
        day = today or dt.datetime.now(dt.UTC).date()
        if request.court_order.date > day:
            raise InputError(
                "the court order's date is in the future",
                field="court_order.date",
                fix="give the date the order was made (YYYY-MM-DD, not after today)",
            )
    if CRIME_EXEMPTION in bases and request.offence is None:
        raise InputError(
            "the crime exemption is cited but no offence is named",
            field="offence",
            fix="name the offence as a statute id, e.g. theft_act_1968_s1",
        )
    return request
