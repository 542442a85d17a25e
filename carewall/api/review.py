"""The holder's side: the review queue, the DPO record, release decisions and appeals.

The reviewer who signs is the one the token is bound to, never one named in the body, and
only at the organisation holding the data. A release carries the holder's record of the
subjects (``facts``: the reviewer confirms or corrects each requester's claim; consent
counts only where stated) and the decision on deferring the notices (contract §3).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response

from carewall.api.auth import ForbiddenError, Principal, require
from carewall.api.models import AppealDecisionIn, ReviewIn
from carewall.api.paging import CURSOR, DEFAULT_LIMIT, LIMIT, PAGED
from carewall.api.requests import (
    REQUEST_ID,
    page_of_requests,
    record_in_scope,
    service_of,
    summary_in_scope,
)
from carewall.errors import InputError
from carewall.service import RequestRecord, RequestSummary, Service
from carewall.service.jobstore import JobRecord, latest_for

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["review"])

Reviewer = Depends(require("release_reviewer", "appeal_reviewer"))
HolderSide = Depends(require("release_reviewer", "appeal_reviewer", "admin"))
ReleaseReviewer = Depends(require("release_reviewer"))
AppealReviewer = Depends(require("appeal_reviewer"))


class ReleaseReply(RequestRecord):
    """The DPO record after a decision, and the job delivering its notices.

    ``job`` is null when nothing is to be sent (a refusal, deferred notices); otherwise its
    ``state`` is ``done`` once every notice was delivered (a small release is delivered
    before the reply) or ``queued``/``running`` with ``done`` of ``total`` so far (a large
    release is delivered by the background worker after the reply).
    """

    job: JobRecord | None = None


class ReleaseSummaryReply(RequestSummary):
    """The reply to a decision sent with ``Prefer: return=minimal`` (RFC 7240): the
    request's summary and the job delivering its notices, without the per-subject record."""

    job: JobRecord | None = None


_MINIMAL = "return=minimal"
_DECISION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "The DPO record after the decision, with its notices' job; with `Prefer: "
            "return=minimal` (RFC 7240) the request's summary and the job only "
            "(`Preference-Applied: return=minimal`), which stays small and fast for a "
            "release of any size."
        )
    }
}
PREFER = Annotated[
    str | None,
    Header(
        description="`return=minimal` for the summary and the job only (RFC 7240)",
        max_length=200,
    ),
]


def wants_minimal(prefer: str | None) -> bool:
    """True when the ``Prefer`` header asks for ``return=minimal`` (RFC 7240 §4.2)."""
    if not prefer:
        return False
    prefs = (p.split(";", 1)[0].strip().lower().replace(" ", "") for p in prefer.split(","))
    return _MINIMAL in prefs


def _with_job(service: Service, record: RequestRecord) -> Response:
    """The reply, serialised once: the record was built and checked by the service, so it
    is not dumped and validated again (that doubles the cost for a release of thousands)."""
    job = latest_for(service.store, record.id) if record.release is not None else None
    reply = ReleaseReply.model_construct(**dict(record), job=job)
    return Response(reply.model_dump_json(by_alias=True), media_type="application/json")


def _minimal(service: Service, summary: RequestSummary) -> Response:
    released = summary.outcome == "released"
    job = latest_for(service.store, summary.id) if released else None
    reply = ReleaseSummaryReply(**summary.model_dump(), job=job)
    return Response(
        reply.model_dump_json(),
        media_type="application/json",
        headers={"Preference-Applied": _MINIMAL, "Vary": "Prefer"},
    )


def _reviewer(principal: Principal) -> str:
    if not principal.reviewer:
        raise ForbiddenError("this token is not bound to a reviewer", fix="issue a reviewer token")
    return principal.reviewer


@router.get(
    "/queue",
    response_model=list[RequestSummary],
    responses=PAGED,
    summary="Requests awaiting review, oldest first, a page at a time",
)
def queue(
    request: Request,
    response: Response,
    principal: Annotated[Principal, Reviewer],
    limit: LIMIT = DEFAULT_LIMIT,
    cursor: CURSOR = None,
) -> list[RequestSummary]:
    # an appeal reviewer's queue is the lodged appeals; a release reviewer's, the requests
    # the policy sent for review (outcome "review" is only ever at stage "decided")
    state = "appealed" if principal.role == "appeal_reviewer" else "review"
    return page_of_requests(
        request, response, limit, cursor, holder=principal.organisation, state=state
    )


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
    response_model=ReleaseReply | ReleaseSummaryReply,
    responses=_DECISION_RESPONSES,
    summary="Release what the policy permits, or refuse",
)
def review(
    request: Request,
    request_id: REQUEST_ID,
    body: ReviewIn,
    principal: Annotated[Principal, ReleaseReviewer],
    prefer: PREFER = None,
) -> Response:
    service = service_of(request)
    summary_in_scope(service, principal, request_id)
    given = body.decides()
    if given and not body.release:
        raise InputError(
            "the subjects' facts and the deferral are decided only with a release",
            field=given,
            fix="leave facts, defer_until and no_defer out when refusing",
        )
    summary = service.record_review(
        request_id,
        _reviewer(principal),
        body.release,
        body.note,
        facts=body.statements(),
        defer_until=body.defer_until,
        no_defer=body.no_defer,
    )
    if wants_minimal(prefer):
        return _minimal(service, summary)
    return _with_job(service, service.get(request_id))


@router.post(
    "/requests/{request_id}/appeal/decision",
    response_model=ReleaseReply | ReleaseSummaryReply,
    responses=_DECISION_RESPONSES,
    summary="Uphold or overturn an appeal",
)
def decide_appeal(
    request: Request,
    request_id: REQUEST_ID,
    body: AppealDecisionIn,
    principal: Annotated[Principal, AppealReviewer],
    prefer: PREFER = None,
) -> Response:
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
    summary = service.record_appeal_decision(
        request_id,
        _reviewer(principal),
        body.uphold,
        facts=body.statements(),
        defer_until=body.defer_until,
        no_defer=body.no_defer,
    )
    if wants_minimal(prefer):
        return _minimal(service, summary)
    return _with_job(service, service.get(request_id))
