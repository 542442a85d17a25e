"""The disclosure request document (contract §3): parsed at the boundary, then typed.

Every malformed input becomes one :class:`InputError` that names the field, says what is
wrong and what is allowed. Personal values (subject refs, names, free text) are never
echoed; a bad vocabulary or organisation id is, because the fix is to correct it.

These pydantic models are what the service stores and what the API's JSON Schema shows.
Building them costs ~150 ms at import, so nothing imports this module until it is used
(:mod:`carewall.policy` loads it on first access); ``carewall decide`` reads documents with
:mod:`carewall.policy.document` instead, which accepts and refuses exactly the same
documents with the same errors. Every check the field validators make, and the wording of
every error, lives there and is shared.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from carewall.errors import InputError
from carewall.policy.checks import (
    CRIME_EXEMPTION,
    MAX_REQUEST_BYTES,
    check_date,
    check_object,
    check_offence,
    check_received_at,
    check_request,
    check_vocab,
    decode,
    distinct_subjects,
    field_path,
    input_error,
    not_blank,
    storable,
    unique,
)

if TYPE_CHECKING:
    from carewall.policy.register import Register

__all__ = [
    "CRIME_EXEMPTION",
    "MAX_REQUEST_BYTES",
    "Authoriser",
    "CourtOrder",
    "DisclosureRequest",
    "Officer",
    "Subject",
    "parse_request",
]

# The API and the service decode documents with ``_decode`` (kept under its old name).
_decode = decode

_Text = Field(min_length=1, max_length=500)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Officer(_Model):
    name: str = _Text
    role: str | None = Field(default=None, max_length=500)
    contact: str | None = Field(default=None, max_length=500)

    @field_validator("name", "role", "contact")
    @classmethod
    def _line(cls, v: str | None) -> str | None:
        return storable(v)


class Authoriser(_Model):
    name: str = _Text
    role: str | None = Field(default=None, max_length=500)

    @field_validator("name", "role")
    @classmethod
    def _line(cls, v: str | None) -> str | None:
        return storable(v)


class CourtOrder(_Model):
    reference: str = _Text
    court: str = _Text
    date: dt.date

    @field_validator("reference", "court")
    @classmethod
    def _text(cls, v: str) -> str:
        # kept as the order was written (made inert wherever shown or exported)
        return not_blank(storable(v, "verbatim") or "")

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, v: Any) -> Any:
        return check_date(v) if isinstance(v, str) else v


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
        return not_blank(storable(v) or "")


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
        return storable(v) or ""

    @field_validator("necessity")
    @classmethod
    def _necessity(cls, v: str | None) -> str | None:
        return storable(v, "verbatim")  # kept as written; shown inert (`carewall show`)

    @field_validator("purpose")
    @classmethod
    def _purpose(cls, v: str) -> str:
        return check_vocab("purpose", v)

    @field_validator("legal_basis")
    @classmethod
    def _basis(cls, v: str) -> str:
        return check_vocab("legal_basis", v)

    @field_validator("other_bases")
    @classmethod
    def _bases(cls, v: list[str]) -> list[str]:
        return unique(v, "legal_basis")

    @field_validator("subjects")
    @classmethod
    def _subjects(cls, v: list[Subject]) -> list[Subject]:
        distinct_subjects([s.ref for s in v])
        return v

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str]) -> list[str]:
        return unique(v, "category")

    @field_validator("onward_recipients")
    @classmethod
    def _onward(cls, v: list[str]) -> list[str]:
        return unique(v, "function")

    @field_validator("offence")
    @classmethod
    def _offence(cls, v: str | None) -> str | None:
        return check_offence(v)

    @field_validator("received_at", mode="before")
    @classmethod
    def _received(cls, v: Any) -> Any:
        return check_received_at(v) if isinstance(v, str) else v

    @property
    def has_consent(self) -> bool:
        """The request-wide consent claim: ``consent`` as main or other basis."""
        return self.legal_basis == "consent" or "consent" in self.other_bases


def _from_validation(e: ValidationError) -> InputError:
    err = e.errors(include_url=False)[0]
    ctx = err.get("ctx") or {}
    return input_error(
        err["type"],
        field_path(tuple(err["loc"])),
        err["input"],
        max_length=ctx.get("max_length"),
        cause=ctx.get("error"),
    )


def parse_request(
    data: bytes | str | Mapping[str, Any], register: Register, *, today: dt.date | None = None
) -> DisclosureRequest:
    """Parse and validate a request document against the vocabulary and the register."""
    raw = check_object(decode(data) if isinstance(data, (bytes, str)) else data)
    try:
        request = DisclosureRequest.model_validate(raw)
    except ValidationError as e:
        raise _from_validation(e) from e
    check_request(
        register,
        requester=request.requester,
        holder=request.holder,
        bases={request.legal_basis, *request.other_bases},
        court_date=None if request.court_order is None else request.court_order.date,
        offence=request.offence,
        today=today,
    )
    return request
