"""The reviewers' decisions: release or refuse (``POST /review/requests/{id}``) and appeals.

Each handler checks the CSRF token first, then the role (as the API's route does: only a
release reviewer reviews, only an appeal reviewer decides an appeal), then the scope (a
request held elsewhere is a 404), then calls the same service method as the API with the
reviewer the session is bound to. A refusal by the service re-renders the form with the
error; a request already decided gets a page that says so (409), never a 500.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from carewall.errors import CarewallError
from carewall.service import RequestRecord, Service
from carewall.web.forms import form_of
from carewall.web.review_common import (
    APPEAL,
    RELEASE,
    appealable,
    held_record,
    organisation,
    reviewable,
    reviewer_of,
    service_of,
)
from carewall.web.review_form import Posted, parse_appeal, parse_review, service_problem
from carewall.web.review_request import render_request
from carewall.web.security import CSRF_FIELD, WebUser, check_csrf, require_user
from carewall.web.templating import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _already(request: Request, service: Service, record: RequestRecord, appeal: bool) -> Response:
    """The request has moved on (a second click, another reviewer): say so plainly."""
    if not appeal:
        decided = record.reviewed_at is not None
        title = (
            f"This request {'has already been decided' if decided else 'is not waiting for review'}"
        )
    elif record.appeal is not None and record.appeal.result is not None:
        title = "This appeal has already been decided"
    else:
        title = "There is no appeal to decide"
    context = {
        "title": title,
        "record": record,
        "requester": organisation(service, record.requester),
        "appeal": appeal,
    }
    return render(request, "review_already.html", context, status=409)


def _failed(
    request: Request,
    service: Service,
    user: WebUser,
    request_id: str,
    e: CarewallError,
    posted: Posted,
    appeal: bool,
) -> Response:
    """The service refused: the already-decided page if the request moved on, else the form."""
    record = held_record(service, user, request_id)
    if not (appealable(record) if appeal else reviewable(record)):
        return _already(request, service, record, appeal)
    posted.errors.append(service_problem(e, posted))
    # 401 from the service means "not this reviewer" (the person is signed in): a 403 page
    status = 403 if e.status == 401 else e.status
    return render_request(request, service, user, record, posted, status=status)


async def _begin(
    request: Request, request_id: str, role: str
) -> tuple[dict[str, str], WebUser, Service, RequestRecord]:
    form = await form_of(request)
    check_csrf(request, form.get(CSRF_FIELD))
    user = require_user(request, role)
    service = service_of(request)
    record = await run_in_threadpool(held_record, service, user, request_id)
    return form, user, service, record


@router.post("/review/requests/{request_id}")
async def review(request: Request, request_id: str) -> Response:
    """Release what the policy permits, or refuse (``POST /api/requests/{id}/review``)."""
    form, user, service, record = await _begin(request, request_id, RELEASE)
    if not reviewable(record):
        return _already(request, service, record, appeal=False)
    posted = parse_review(form, record)
    if posted.errors:
        return render_request(request, service, user, record, posted, status=400)
    try:
        await run_in_threadpool(
            lambda: service.review(
                record.id,
                reviewer_of(user),
                bool(posted.choice),
                posted.note,
                facts=posted.facts or None,
                defer_until=posted.defer_until,
                no_defer=posted.no_defer,
            )
        )
    except CarewallError as e:
        return await run_in_threadpool(_failed, request, service, user, record.id, e, posted, False)
    return RedirectResponse(f"/review/requests/{record.id}/decided", status_code=303)


@router.post("/review/requests/{request_id}/appeal")
async def decide_appeal(request: Request, request_id: str) -> Response:
    """Keep or change the first decision (``POST /api/requests/{id}/appeal/decision``)."""
    form, user, service, record = await _begin(request, request_id, APPEAL)
    if not appealable(record):
        return _already(request, service, record, appeal=True)
    posted = parse_appeal(form, record)
    if posted.errors:
        return render_request(request, service, user, record, posted, status=400)
    try:
        await run_in_threadpool(
            lambda: service.decide_appeal(
                record.id,
                reviewer_of(user),
                bool(posted.choice),
                facts=posted.facts or None,
                defer_until=posted.defer_until,
                no_defer=posted.no_defer,
            )
        )
    except CarewallError as e:
        return await run_in_threadpool(_failed, request, service, user, record.id, e, posted, True)
    return RedirectResponse(f"/review/requests/{record.id}/decided", status_code=303)
