"""``/review``: what waits for the signed-in reviewer, scoped exactly as ``GET /api/queue``.

A release reviewer sees the requests at their organisation that the policy sent for review
(``service.queue``) and the deferred notices whose review date has come (``GET
/api/deferrals?due=true``), which they may lift or renew. An appeal reviewer sees the
appeals lodged at their organisation (``state=appealed``), each with the day it must be
decided by (:data:`carewall.deadlines.APPEAL_DAYS`). Lists carry ids, codes and
counts only: no names of people and no references.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from carewall.deadlines import APPEAL_DAYS, appeal_decide_by
from carewall.errors import NotFoundError
from carewall.service import RequestSummary, Service
from carewall.web.review_common import (
    APPEAL,
    REVIEWERS,
    held_record,
    organisation,
    service_of,
    today,
)
from carewall.web.security import WebUser, require_user
from carewall.web.templating import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _row(service: Service, summary: RequestSummary) -> dict[str, Any]:
    return {
        "id": summary.id,
        "received": summary.received_at[:10],
        "requester": organisation(service, summary.requester),
        "purpose": summary.purpose,
        "categories": summary.categories,
        "subjects": summary.subjects,
    }


def _appeal_row(
    service: Service, user: WebUser, summary: RequestSummary, now: str
) -> dict[str, Any]:
    """A request's row, with when its appeal was lodged and the day it must be decided by
    (the auditor fails an appeal left undecided longer than APPEAL_DAYS)."""
    row = _row(service, summary)
    appeal = held_record(service, user, summary.id).appeal
    if appeal is not None:
        by = appeal_decide_by(appeal.lodged_at).astimezone(UTC).date().isoformat()
        row |= {"appealed": appeal.lodged_at[:10], "decide_by": by, "overdue": by < now}
    return row


def _deferral_banner(service: Service, user: WebUser, request_id: str | None) -> str | None:
    """After a deferral change: what now stands for that request (read, never trusted)."""
    if not request_id:
        return None
    try:
        record = held_record(service, user, request_id)
    except NotFoundError:
        return None
    waiting = [n for n in record.notices if n.status == "deferred"]
    if waiting:
        until = waiting[0].review_date or ""
        return f"The notices for request {record.id} stay delayed until {until}."
    if record.release is None:
        return None
    return f"The notices for request {record.id} have been sent."


@router.get("/review", response_class=HTMLResponse)
def queue(request: Request, deferral: str | None = None) -> HTMLResponse:
    user = require_user(request, *REVIEWERS)
    service = service_of(request)
    org = organisation(service, user.organisation)
    if user.role == APPEAL:
        appeals = service.list_requests(holder=user.organisation, state="appealed")
        now = today(service)
        context: dict[str, Any] = {
            "title": "Appeals waiting for a decision",
            "appeals": [_appeal_row(service, user, s, now) for s in appeals],
            "appeal_days": APPEAL_DAYS,
        }
    else:
        due = service.deferrals(user.organisation, due_by=today(service))
        context = {
            "title": "Requests waiting for your review",
            "waiting": [_row(service, s) for s in service.queue(user.organisation)],
            "deferrals": [
                {
                    "id": d.request_id,
                    "requester": organisation(service, d.requester),
                    "review_date": d.review_date,
                    "notices": d.notices,
                }
                for d in due
            ],
            "banner": _deferral_banner(service, user, deferral),
        }
    context["organisation"] = org
    return render(request, "review_queue.html", context)
