"""``/review/requests/{id}/deferral``: lift or renew a deferral of the notices.

As ``POST /api/requests/{id}/deferral``: only a release reviewer at the holding
organisation may do it, as the reviewer the session is bound to. Lifting sends the notices
now; renewing sets a new review date at most 90 days ahead. Each is a ``deferral`` entry
in the public log. A request held elsewhere is a 404 page, as one that does not exist.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carewall.errors import CarewallError
from carewall.service import RequestRecord, Service
from carewall.web.forms import form_of
from carewall.web.review_common import RELEASE, held_record, organisation, reviewer_of, service_of
from carewall.web.review_form import Posted, read_date, service_problem
from carewall.web.security import CSRF_FIELD, WebUser, check_csrf, require_user
from carewall.web.templating import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _page(
    request: Request,
    service: Service,
    record: RequestRecord,
    posted: Posted | None = None,
    status: int = 200,
) -> HTMLResponse:
    errors = posted.errors if posted else []
    deferred = [n for n in record.notices if n.status == "deferred"]
    context: dict[str, Any] = {
        "title": "Lift or renew the delay",
        "back": "/review",
        "record": record,
        "requester": organisation(service, record.requester),
        "deferred": deferred,
        "review_date": deferred[0].review_date if deferred else None,
        "values": posted.values if posted else {},
        "errors": errors,
        "field_errors": {e["href"][1:]: e["text"] for e in errors},
    }
    return render(request, "review_deferral.html", context, status=status)


def _held(service: Service, user: WebUser, request_id: str) -> RequestRecord:
    return held_record(service, user, request_id)


@router.get("/review/requests/{request_id}/deferral", response_class=HTMLResponse)
def deferral_page(request: Request, request_id: str) -> HTMLResponse:
    user = require_user(request, RELEASE)
    service = service_of(request)
    return _page(request, service, _held(service, user, request_id))


def _parse(form: dict[str, str]) -> Posted:
    out = Posted()
    action = form.get("action")
    out.values["action"] = (action or "")[:10]
    if action == "lift":
        out.choice = True
    elif action == "renew":
        out.choice = False
        out.defer_until = read_date(form, out)
        if out.defer_until is None and not out.errors:
            out.error("defer_until-day", "Enter the new review date")
    else:
        out.error("action", "Select whether to send the notices now or keep delaying them")
    return out


@router.post("/review/requests/{request_id}/deferral")
async def change_deferral(request: Request, request_id: str) -> Response:
    form = await form_of(request)
    check_csrf(request, form.get(CSRF_FIELD))
    user = require_user(request, RELEASE)
    service = service_of(request)
    record = await run_in_threadpool(_held, service, user, request_id)
    posted = _parse(form)
    if posted.errors:
        return _page(request, service, record, posted, status=400)
    try:
        if posted.choice:
            await run_in_threadpool(service.lift_deferral, record.id, reviewer_of(user))
        else:
            until = str(posted.defer_until)
            await run_in_threadpool(service.renew_deferral, record.id, reviewer_of(user), until)
    except CarewallError as e:
        posted.errors.append(service_problem(e, posted))
        if posted.errors[-1]["href"] == "#decision":
            posted.errors[-1]["href"] = "#action"
        record = await run_in_threadpool(_held, service, user, request_id)
        return _page(request, service, record, posted, status=e.status)
    return RedirectResponse(f"/review?deferral={record.id}", status_code=303)
