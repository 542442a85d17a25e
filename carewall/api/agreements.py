"""The agreements register over HTTP, for the holder's admin (its DPO).

``GET /api/agreements`` lists the caller's organisation's agreements (paged by id);
``POST /api/agreements`` puts one forward (the body is the agreement document, the same
fields as an ``examples/agreements`` file, as JSON): 201 with the record, whose ``state``
is ``registered`` or ``refused`` (naming the pledge rules; the refusal is logged).
``GET /api/agreements/{id}``, ``POST …/{id}/withdraw`` (``{"due_days": 30}``) and
``POST …/{id}/destroyed`` (``{"certificate": "<the certificate file's text>",
"recipient_key": null}``). An agreement held by another organisation and one that does
not exist get the same 404, so ids reveal nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from carewall.api.auth import ForbiddenError, Principal, require
from carewall.api.paging import CURSOR, DEFAULT_LIMIT, LIMIT, PAGED, decode_cursor, link_next
from carewall.api.requests import service_of
from carewall.errors import NotFoundError
from carewall.policy.agreements import parse_agreement
from carewall.service import Service
from carewall.service.agreement_records import AgreementRecord, get_agreement, list_agreements

__all__ = ["router"]

router = APIRouter(prefix="/api/agreements", tags=["agreements"])

Admin = Depends(require("admin"))
AGREEMENT_ID = Annotated[str, Path(max_length=100, description="the agreement's id")]


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    due_days: int | None = Field(default=None, ge=1, le=365)


class DestroyedIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    certificate: str = Field(max_length=1_000_000)
    recipient_key: str | None = Field(default=None, max_length=1000)


def _own(service: Service, principal: Principal, agreement_id: str) -> AgreementRecord:
    try:
        record = get_agreement(service, agreement_id)
    except NotFoundError:
        record = None
    if record is None or record.terms["holder"] != principal.organisation:
        raise NotFoundError(
            "no agreement with this id is held by your organisation",
            field="id",
            fix="GET /api/agreements lists your organisation's agreements",
        )
    return record


@router.get("", response_model=list[AgreementRecord], responses=PAGED)
def agreements(
    request: Request,
    response: Response,
    principal: Annotated[Principal, Admin],
    overdue: bool = False,
    limit: LIMIT = DEFAULT_LIMIT,
    cursor: CURSOR = None,
) -> list[AgreementRecord]:
    """Your organisation's agreements by id, refused ones included."""
    after = decode_cursor(cursor, (str,))
    rows = list_agreements(
        service_of(request),
        holder=principal.organisation,
        after=None if after is None else after[0],
        limit=limit + 1,
        overdue=overdue,
    )
    page = rows[:limit]
    link_next(request, response, (page[-1].id,) if len(rows) > limit else None, limit)
    return page


@router.post("", response_model=AgreementRecord, status_code=201)
def put_forward(
    request: Request,
    principal: Annotated[Principal, Admin],
    document: Annotated[dict[str, Any], Body(description="the agreement document")],
) -> AgreementRecord:
    """Decide an agreement with the pledge and the local policy, and log it."""
    agreement = parse_agreement(document)
    if agreement.holder != principal.organisation:
        raise ForbiddenError(
            "an admin registers only its own organisation's agreements",
            fix="set holder to your organisation's id",
        )
    record: AgreementRecord = service_of(request).register_agreement(agreement)
    return record


@router.get("/{agreement_id}", response_model=AgreementRecord)
def agreement(
    request: Request, agreement_id: AGREEMENT_ID, principal: Annotated[Principal, Admin]
) -> AgreementRecord:
    return _own(service_of(request), principal, agreement_id)


@router.post("/{agreement_id}/withdraw", response_model=AgreementRecord)
def withdraw(
    request: Request,
    agreement_id: AGREEMENT_ID,
    principal: Annotated[Principal, Admin],
    body: WithdrawIn | None = None,
) -> AgreementRecord:
    """Withdraw it: count what was released under it and ask for its destruction."""
    service = service_of(request)
    _own(service, principal, agreement_id)
    due = body.due_days if body is not None else None
    record: AgreementRecord = service.withdraw_agreement(agreement_id, due_days=due)
    return record


@router.post("/{agreement_id}/destroyed", response_model=AgreementRecord)
def destroyed(
    request: Request,
    agreement_id: AGREEMENT_ID,
    body: DestroyedIn,
    principal: Annotated[Principal, Admin],
) -> AgreementRecord:
    """Register the recipient's signed deletion certificate."""
    service = service_of(request)
    _own(service, principal, agreement_id)
    record: AgreementRecord = service.agreement_destroyed(
        agreement_id, body.certificate.encode("utf-8"), body.recipient_key
    )
    return record
