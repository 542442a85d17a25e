"""Pydantic wire models for the HTTP API: what each endpoint accepts and returns.

The request document itself is parsed by :mod:`carewall.policy.request` (so the API and the
CLI refuse exactly the same inputs with the same field names); the DPO records come from
:mod:`carewall.service.records`. Everything here is the API's own small shapes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from carewall.api.auth import Role
from carewall.api.errors import field_part
from carewall.errors import InputError
from carewall.ids import PATTERNS
from carewall.service.records import AppealRecord, RequestRecord
from carewall.text import TextKind, check_text

__all__ = [
    "AdminLogOut",
    "AppealDecisionIn",
    "AppealIn",
    "DeferralIn",
    "DeferralOut",
    "IssuedTokenOut",
    "LoggedOut",
    "OrganisationOut",
    "PolicyIn",
    "PolicyOut",
    "RequestStatus",
    "ReviewIn",
    "ReviewerChangeOut",
    "ReviewerIn",
    "ReviewerOut",
    "RolesIn",
    "SubjectAppealIn",
    "SubjectFactsIn",
    "SubjectViewIn",
    "TokenIn",
    "TokenOut",
]

_REQUEST_ID = r"^[A-Za-z0-9_-]{1,64}$"


class _In(BaseModel):
    # Strict: "yes" is not true. A release decision must be exactly the JSON boolean.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _storable(kind: TextKind, value: str | None, info: ValidationInfo) -> str | None:
    """Text every database can store (carewall.text), refused naming the field.

    An InputError is not a ValueError, so it passes through pydantic to the API's error
    handler and renders as the one error shape (422) with the field's own name.
    """
    if value is None:
        return None
    return check_text(value, field=str(info.field_name), kind=kind)


_FACTS = ("is_child", "is_victim_or_witness", "consent")
_FACT_EXAMPLE = '{"subject": 0, "is_victim_or_witness": true, "consent": true}'
_FACT_ERRORS = {
    "list_type": ("must be a list of statements, one per subject", f"e.g. [{_FACT_EXAMPLE}]"),
    "model_type": ("must be an object", "e.g. " + _FACT_EXAMPLE),
    "model_attributes_type": ("must be an object", "e.g. " + _FACT_EXAMPLE),
    "missing": ("is required", "give the subject's position in the request, 0 for the first"),
    "extra_forbidden": ("is not a fact the holder states", "give any of: " + ", ".join(_FACTS)),
    "bool_type": ("must be true or false", "write true or false, or leave it out"),
    "int_type": ("must be a subject's position in the request", "an integer, 0 for the first"),
    "greater_than_equal": (
        "must be a subject's position in the request",
        "an integer, 0 for the first",
    ),
}


class SubjectFactsIn(_In):
    """The holder's reviewer's statement about one subject, named by position in the request.

    A fact left out is confirmed as the requester claimed it, except ``consent``: a subject
    counts as consenting only when the reviewer says so here (contract §3).
    """

    subject: int = Field(ge=0, description="the subject's position in the request (0 = first)")
    is_child: bool | None = None
    is_victim_or_witness: bool | None = None
    consent: bool | None = None

    @field_validator(*_FACTS, mode="before")
    @classmethod
    def _no_null(cls, value: Any) -> Any:
        # null is neither true nor false; a fact not stated is left out
        if value is None:
            raise ValueError("must be true or false")
        return value

    def statement(self) -> dict[str, Any]:
        """The form the service takes: ``{"subject": i, <fact>: bool, …}``."""
        return self.model_dump(exclude_none=True)


def _facts_named(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Validate ``facts``, naming a bad item as the service does: ``facts[k].field``.

    An InputError is not a ValueError, so it passes through pydantic to the API's error
    handler and renders as the one error shape (422), like the service's own facts errors.
    """
    try:
        return handler(value)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        field = "facts"
        for part in err["loc"]:
            field += f"[{part}]" if isinstance(part, int) else f".{field_part(part)}"
        message, fix = _FACT_ERRORS.get(
            err["type"], (str(err.get("msg", "is invalid")), "see the API schema")
        )
        if err["type"] == "value_error":  # the null check above
            message, fix = _FACT_ERRORS["bool_type"]
        raise InputError(message, field=field, fix=fix) from None


class _HolderDecision(_In):
    """The holder's record of the subjects and the deferral decision, stated at release."""

    facts: list[SubjectFactsIn] = Field(
        default_factory=list,
        description="per-subject confirmations and corrections of the requester's claims",
    )
    # checked by the service (a real date, after today, <= 90 days), which names the fix
    defer_until: str | None = Field(
        default=None,
        max_length=64,
        json_schema_extra={"format": "date"},
        description="defer the notices until this review date (after today, <= 90 days)",
    )
    no_defer: bool = Field(
        default=False, description="send the notices now, although deferral was asked for"
    )

    @field_validator("facts", mode="wrap")
    @classmethod
    def _name_bad_item(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        return _facts_named(value, handler)

    def statements(self) -> list[dict[str, Any]] | None:
        return [f.statement() for f in self.facts] or None

    def decides(self) -> str | None:
        """The first holder-decision field given, or None when none is."""
        if self.facts:
            return "facts"
        if self.defer_until is not None:
            return "defer_until"
        return "no_defer" if self.no_defer else None


class ReviewIn(_HolderDecision):
    release: bool
    note: str | None = Field(default=None, max_length=5000)

    @field_validator("note")
    @classmethod
    def _prose(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _storable("prose", value, info)


class AppealIn(_In):
    grounds: str = Field(min_length=1, max_length=10000)

    @field_validator("grounds")
    @classmethod
    def _prose(cls, value: str, info: ValidationInfo) -> str | None:
        return _storable("prose", value, info)


class AppealDecisionIn(_HolderDecision):
    uphold: bool


class DeferralIn(_In):
    """Lift a deferral (the notices go out now) or renew it with a new review date."""

    action: Literal["lift", "renew"]
    until: str | None = Field(
        default=None,
        max_length=64,
        json_schema_extra={"format": "date"},
        description="with renew: the new review date (after today, <= 90 days)",
    )


class DeferralOut(BaseModel):
    """One request whose notices are deferred: ids, dates and counts (no personal data)."""

    request_id: str
    holder: str
    requester: str
    review_date: str
    decided_by: str
    notices: int


class SubjectViewIn(_In):
    """The request id and access code from a subject's notice (sent in a body, never a URL)."""

    request: str = Field(pattern=_REQUEST_ID)
    code: str = Field(min_length=1, max_length=200)


class SubjectAppealIn(SubjectViewIn):
    grounds: str = Field(min_length=1, max_length=10000)

    @field_validator("grounds")
    @classmethod
    def _prose(cls, value: str, info: ValidationInfo) -> str | None:
        return _storable("prose", value, info)


# The one id validator's patterns (carewall.ids), anchored whole, so the API refuses exactly
# what the register refuses and publishes the same pattern in its schema.
_ORG_ID = f"^(?:{PATTERNS['organisation']})$"
_REVIEWER_ID = f"^(?:{PATTERNS['reviewer']})$"
ReviewerRole = Literal["release_reviewer", "appeal_reviewer"]


class OrganisationOut(BaseModel):
    id: str
    name: str
    function: str
    retired_at: str | None = None


class ReviewerIn(_In):
    """A reviewer at the admin's own organisation (``organisation`` may be left out)."""

    id: str = Field(pattern=_REVIEWER_ID)
    name: str = Field(min_length=1, max_length=200, description="kept privately; never logged")
    organisation: str | None = Field(default=None, pattern=_ORG_ID)
    roles: list[ReviewerRole] = Field(min_length=1, max_length=2)

    @field_validator("name")
    @classmethod
    def _line(cls, value: str, info: ValidationInfo) -> str | None:
        return _storable("line", value, info)


class RolesIn(_In):
    """A reviewer's full new list of roles."""

    roles: list[ReviewerRole] = Field(min_length=1, max_length=2)


class ReviewerOut(BaseModel):
    id: str
    organisation: str
    roles: list[str]
    retired_at: str | None = None


class LoggedOut(BaseModel):
    """A public register entry the change wrote, and its index in the log."""

    kind: Literal["organisation", "reviewer"]
    id: str
    change: Literal["add", "update", "retire"]
    log_index: int


class ReviewerChangeOut(ReviewerOut):
    """The reviewer as it now stands, and the log entries the change wrote."""

    logged: list[LoggedOut]


class TokenIn(_In):
    """A token for the admin's own organisation (``organisation`` may be left out)."""

    organisation: str | None = Field(default=None, pattern=_ORG_ID)
    role: Role
    reviewer: str | None = Field(
        default=None,
        pattern=_REVIEWER_ID,
        description="only for release_reviewer and appeal_reviewer tokens",
    )


class TokenOut(BaseModel):
    id: str
    organisation: str
    role: str
    reviewer: str | None
    created_at: str
    revoked_at: str | None


class IssuedTokenOut(TokenOut):
    secret: str = Field(description="The bearer token. Shown once; only its hash is kept.")


class AdminLogOut(BaseModel):
    """One row of the admin record: who did what, by id (never a secret or a name)."""

    time: str
    organisation: str
    actor: str = Field(description='the admin token id, or "cli" for the operator')
    action: str
    detail: dict[str, Any]


class PolicyIn(_In):
    text: str = Field(
        min_length=1, max_length=512 * 1024, description="The local Cedar policy text."
    )

    @field_validator("text")
    @classmethod
    def _code(cls, value: str, info: ValidationInfo) -> str | None:
        return _storable("verbatim", value, info)


class PolicyOut(BaseModel):
    policy: str = Field(description="sha256 of the active policy set's canonical text")
    text: str


class RequestStatus(BaseModel):
    """What a requester sees of its own request: state, decision and what was released."""

    id: str
    reference: str
    holder: str
    requester: str
    purpose: str
    legal_basis: str
    categories: list[str]
    received_at: str
    stage: str
    outcome: str
    decision: dict[str, Any]
    released_categories: list[str]
    released_at: str | None
    appeal: AppealRecord | None = Field(
        description="the appeal in hand: the oldest not yet decided, else the latest"
    )
    withdrawn_at: str | None
    appeals: list[AppealRecord] = Field(
        default_factory=list,
        description="every appeal in the order lodged (each subject of a release may appeal "
        "it once); a subject's grounds are null for anyone but the holder's reviewers",
    )

    @classmethod
    def of(cls, record: RequestRecord) -> RequestStatus:
        release = record.release
        return cls(
            id=record.id,
            reference=record.reference,
            holder=record.holder,
            requester=record.requester,
            purpose=record.purpose,
            legal_basis=record.legal_basis,
            categories=record.categories,
            received_at=record.received_at,
            stage=record.stage,
            outcome=record.outcome,
            decision=record.decision,
            released_categories=release.categories if release else [],
            released_at=release.sent_at if release else None,
            appeal=record.appeal,
            withdrawn_at=record.withdrawn_at,
            appeals=record.appeals,
        )
