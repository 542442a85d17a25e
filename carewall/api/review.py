"""The holder's side: the review queue, the DPO record, release decisions and appeals.

The reviewer who signs is the one the token is bound to, never one named in the body, and
only at the organisation holding the data. A release carries the holder's record of the
subjects (``facts``: the reviewer confirms or corrects each requester's claim; consent
counts only where stated) and the decision on deferring the notices (contract §3).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from carewall.api.auth import ForbiddenError, Principal, require
from carewall.api.models import AppealDecisionIn, ReviewIn
from carewall.api.requests import REQUEST_ID, record_in_scope, service_of
from carewall.errors import InputError
from carewall.service import RequestRecord, RequestSummary

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["review"])

Reviewer = Depends(require("release_reviewer", "appeal_reviewer"))
HolderSide = Depends(require("release_reviewer", "appeal_reviewer", "admin"))
ReleaseReviewer = Depends(require("release_reviewer"))
AppealReviewer = Depends(require("appeal_reviewer"))


def _reviewer(principal: Principal) -> str:
    if not principal.reviewer:
        raise ForbiddenError("this token is not bound to a reviewer", fix="issue a reviewer token")
    return principal.reviewer


@router.get("/queue", response_model=list[RequestSummary], summary="Requests awaiting review")
def queue(request: Request, principal: Annotated[Principal, Reviewer]) -> list[RequestSummary]:
    service = service_of(request)
    if principal.role == "appeal_reviewer":
        return service.list_requests(holder=principal.organisation, state="appealed")
    return service.queue(principal.organisation)


@router.get(
    "/requests/{request_id}/record",
    response_model=RequestRecord,
    summary="The DPO record of a request (holder side)",
)
def record(
    request: Request, request_id: REQUEST_ID, principal: Annotated[Principal, HolderSide]
) -> RequestRecord:
    return record_in_scope(service_of(request), principal, request_id)


@router.post(
    "/requests/{request_id}/review",
    response_model=RequestRecord,
    summary="Release what the policy permits, or refuse",
)
def review(
    request: Request,
    request_id: REQUEST_ID,
    body: ReviewIn,
    principal: Annotated[Principal, ReleaseReviewer],
) -> RequestRecord:
    service = service_of(request)
    record_in_scope(service, principal, request_id)
    given = body.decides()
    if given and not body.release:
        raise InputError(
            "the subjects' facts and the deferral are decided only with a release",
            field=given,
            fix="leave facts, defer_until and no_defer out when refusing",
        )
    return service.review(
        request_id,
        _reviewer(principal),
        body.release,
        body.note,
        facts=body.statements(),
        defer_until=body.defer_until,
        no_defer=body.no_defer,
    )


@router.post(
    "/requests/{request_id}/appeal/decision",
    response_model=RequestRecord,
    summary="Uphold or overturn an appeal",
)
def decide_appeal(
    request: Request,
    request_id: REQUEST_ID,
    body: AppealDecisionIn,
    principal: Annotated[Principal, AppealReviewer],
) -> RequestRecord:
    service = service_of(request)
    record = record_in_scope(service, principal, request_id)
    given = body.decides()
    appeal = record.appeal
    releases = not body.uphold and appeal is not None and appeal.prior_outcome == "refused"
    if given and record.stage == "appealed" and not releases:
        raise InputError(
            "the subjects' facts and the deferral are decided only when overturning a "
            "refusal releases data",
            field=given,
            fix="leave facts, defer_until and no_defer out",
        )
    return service.decide_appeal(
        request_id,
        _reviewer(principal),
        body.uphold,
        facts=body.statements(),
        defer_until=body.defer_until,
        no_defer=body.no_defer,
    )
