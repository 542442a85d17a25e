"""Pydantic wire models for the HTTP API: what each endpoint accepts and returns.

The request document itself is parsed by :mod:`carewall.policy.request` (so the API and the
CLI refuse exactly the same inputs with the same field names); the DPO records come from
:mod:`carewall.service.records`. Everything here is the API's own small shapes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from carewall.api.auth import Role
from carewall.service.records import AppealRecord, RequestRecord

__all__ = [
    "AppealDecisionIn",
    "AppealIn",
    "IssuedTokenOut",
    "OrganisationIn",
    "OrganisationOut",
    "PolicyIn",
    "PolicyOut",
    "RequestStatus",
    "ReviewIn",
    "ReviewerIn",
    "ReviewerOut",
    "SubjectAppealIn",
    "SubjectViewIn",
    "TokenIn",
    "TokenOut",
]

_ID = r"^[a-z0-9][a-z0-9-]{0,63}$"
_REQUEST_ID = r"^[A-Za-z0-9_-]{1,64}$"


class _In(BaseModel):
    # Strict: "yes" is not true. A release decision must be exactly the JSON boolean.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ReviewIn(_In):
    release: bool
    note: str | None = Field(default=None, max_length=5000)


class AppealIn(_In):
    grounds: str = Field(min_length=1, max_length=10000)


class AppealDecisionIn(_In):
    uphold: bool


class SubjectViewIn(_In):
    """The request id and access code from a subject's notice (sent in a body, never a URL)."""

    request: str = Field(pattern=_REQUEST_ID)
    code: str = Field(min_length=1, max_length=200)


class SubjectAppealIn(SubjectViewIn):
    grounds: str = Field(min_length=1, max_length=10000)


class OrganisationIn(_In):
    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=300)
    function: str = Field(min_length=1, max_length=64)


class OrganisationOut(BaseModel):
    id: str
    name: str
    function: str


class ReviewerIn(_In):
    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=300)
    organisation: str = Field(pattern=_ID)
    roles: list[Literal["release_reviewer", "appeal_reviewer"]] = Field(min_length=1)


class ReviewerOut(BaseModel):
    id: str
    organisation: str
    roles: list[str]


class TokenIn(_In):
    organisation: str = Field(pattern=_ID)
    role: Role
    reviewer: str | None = Field(default=None, pattern=_ID)


class TokenOut(BaseModel):
    id: str
    organisation: str
    role: str
    reviewer: str | None
    created_at: str
    revoked_at: str | None


class IssuedTokenOut(TokenOut):
    secret: str = Field(description="The bearer token. Shown once; only its hash is kept.")


class PolicyIn(_In):
    text: str = Field(
        min_length=1, max_length=512 * 1024, description="The local Cedar policy text."
    )


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
    appeal: AppealRecord | None
    withdrawn_at: str | None

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
        )
