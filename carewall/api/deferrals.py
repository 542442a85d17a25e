"""Deferred notices over HTTP: the holder's list of deferrals due, and lifting or renewing one.

Contract §3, "Deferral": the holder's reviewer decides a request to defer the subjects'
notices, with a review date at most 90 days ahead, and due deferrals are listed until each
is lifted or renewed. Only the holder sees or changes its deferrals: reviewers and the admin
of the holding organisation may list them, and only a release reviewer there may lift or
renew one, as the reviewer the token is bound to (never one named in the body). Every
decision is a ``deferral`` ledger entry; lifted notices are logged and delivered at once.
"""

from __future__ import annotations

from datetime import UTC, date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from carewall.api.auth import ForbiddenError, Principal, require
from carewall.api.models import DeferralIn, DeferralOut
from carewall.api.paging import (
    CURSOR,
    DEFAULT_LIMIT,
    LIMIT,
    PAGED,
    decode_cursor,
    link_next,
    page_in_memory,
)
from carewall.api.requests import REQUEST_ID, service_of, summary_in_scope
from carewall.errors import InputError
from carewall.service import RequestRecord, Service

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["deferrals"])

HolderSide = Depends(require("release_reviewer", "appeal_reviewer", "admin"))
ReleaseReviewer = Depends(require("release_reviewer"))
DUE = Annotated[
    str | None,
    Query(
        max_length=64,
        description="only deferrals whose review date has come by this date (true: today)",
    ),
]


def _due_by(service: Service, due: str | None) -> str | None:
    if due is None:
        return None
    if due == "true":
        return service.clock().astimezone(UTC).date().isoformat()
    try:
        if len(due) != 10 or not due.isascii():
            raise ValueError(due)
        return date.fromisoformat(due).isoformat()
    except ValueError:
        raise InputError(
            "is not a date", field="due", fix="write it as YYYY-MM-DD, or true for today"
        ) from None


def _held_by_caller(service: Service, principal: Principal, request_id: str) -> None:
    """Refuse (404) unless the request exists and the caller's organisation holds it.

    A request missing and one held elsewhere get the same 404 as on every other route
    (:func:`carewall.api.requests.summary_in_scope`), so ids reveal nothing.
    """
    summary_in_scope(service, principal, request_id)  # one row, not the whole record


@router.get(
    "/deferrals",
    response_model=list[DeferralOut],
    responses=PAGED,
    summary="Requests whose notices the caller's organisation has deferred, soonest first",
)
def deferrals(
    request: Request,
    response: Response,
    principal: Annotated[Principal, HolderSide],
    due: DUE = None,
    limit: LIMIT = DEFAULT_LIMIT,
    cursor: CURSOR = None,
) -> list[DeferralOut]:
    service = service_of(request)
    due_by = _due_by(service, due)
    after = decode_cursor(cursor, (str, str))
    page, more = page_in_memory(
        service.deferrals(principal.organisation, due_by=due_by),
        lambda d: (d.review_date, d.request_id),
        limit,
        after,
    )
    link_next(request, response, more, limit)
    return [DeferralOut(**d.to_json()) for d in page]


@router.post(
    "/requests/{request_id}/deferral",
    response_model=RequestRecord,
    summary="Lift a deferral (the notices are sent now) or renew it with a new review date",
)
def change_deferral(
    request: Request,
    request_id: REQUEST_ID,
    body: DeferralIn,
    principal: Annotated[Principal, ReleaseReviewer],
) -> RequestRecord:
    service = service_of(request)
    _held_by_caller(service, principal, request_id)
    if not principal.reviewer:
        raise ForbiddenError("this token is not bound to a reviewer", fix="issue a reviewer token")
    if body.action == "lift":
        if body.until is not None:
            raise InputError(
                "is given only to renew a deferral", field="until", fix="leave it out to lift"
            )
        return service.lift_deferral(request_id, principal.reviewer)
    if body.until is None:
        raise InputError(
            "is required to renew a deferral",
            field="until",
            fix="give the new review date as YYYY-MM-DD, at most 90 days ahead",
        )
    return service.renew_deferral(request_id, principal.reviewer, body.until)
