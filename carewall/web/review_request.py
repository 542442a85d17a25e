"""``/review/requests/{id}``: one request as its holder's reviewer sees it, and the outcome.

The page shows what ``GET /api/requests/{id}/record`` returns to a reviewer at the holder:
who asks and why, each category's decision with the rules behind it, and each person the
request names with the facts claimed about them. A release reviewer gets the form to
release or refuse a request waiting for review; an appeal reviewer gets the form to decide
a lodged appeal (its grounds were written for them). Anything else is shown read-only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carewall.policy.offences import act_of
from carewall.service import RequestRecord, Service
from carewall.service.records import AppealRecord
from carewall.web.review_common import (
    APPEAL,
    RELEASE,
    REVIEWERS,
    appealable,
    held_record,
    organisation,
    reviewable,
    service_of,
)
from carewall.web.review_form import MAX_FORM_SUBJECTS, Posted, subjects_view
from carewall.web.security import WebUser, require_user
from carewall.web.templating import render

__all__ = ["render_request", "router"]

router = APIRouter(include_in_schema=False)


def _rows(categories: dict[str, Any], order: list[str]) -> list[dict[str, Any]]:
    """One row per category, in the order the request asked for them."""
    rows = []
    for cat in order + sorted(set(categories) - set(order)):
        d = categories.get(cat)
        if not isinstance(d, dict):
            continue
        rows.append(
            {
                "category": cat,
                "permitted": d.get("outcome") == "review",
                "rules": [str(r) for r in d.get("rules") or []],
            }
        )
    return rows


def _decision(record: RequestRecord) -> dict[str, Any]:
    decision = record.decision
    rows = _rows(decision.get("categories") or {}, record.categories)
    groups = [
        {
            "people": [int(i) + 1 for i in g.get("subjects") or []],
            "facts": g.get("facts") or {},
            "rows": _rows(g.get("categories") or {}, record.categories),
        }
        for g in decision.get("groups") or []
    ]
    return {
        "rows": rows,
        "groups": groups,
        "permitted": [r["category"] for r in rows if r["permitted"]],
        "refused": [r["category"] for r in rows if not r["permitted"]],
    }


def _mode(user: WebUser, record: RequestRecord) -> str | None:
    """Which form, if any, this reviewer gets for this request now."""
    if user.role == RELEASE and reviewable(record):
        return "review"
    if user.role == APPEAL and appealable(record):
        return "appeal"
    return None


def _last_decided(record: RequestRecord) -> AppealRecord | None:
    """The appeal decided last (appeals are decided in the order lodged), if any."""
    decided = [a for a in record.appeals if a.result is not None]
    if decided:
        return decided[-1]
    appeal = record.appeal  # a record read without its list of appeals
    return appeal if appeal is not None and appeal.result is not None else None


def _decided(user: WebUser, record: RequestRecord) -> bool:
    """Whether there is a decision by this reviewer's role to show on the outcome page."""
    if user.role == APPEAL:
        return _last_decided(record) is not None
    return record.reviewed_at is not None


def render_request(
    request: Request,
    service: Service,
    user: WebUser,
    record: RequestRecord,
    posted: Posted | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The request page, with the form refilled and its errors when ``posted`` is given."""
    values = posted.values if posted else {}
    errors = posted.errors if posted else []
    mode = _mode(user, record)
    appeal = record.appeal
    releases_on_overturn = appeal is not None and appeal.prior_outcome == "refused"
    requester = organisation(service, record.requester)
    context: dict[str, Any] = {
        "title": "Decide this appeal" if mode == "appeal" else "Review this request",
        "back": "/review",
        "record": record,
        "requester": requester,
        "offence_act": act_of(record.offence) if record.offence else None,
        "decision": _decision(record),
        "subjects": subjects_view(record, values),
        "too_many": len(record.subjects) > MAX_FORM_SUBJECTS,
        "max_subjects": MAX_FORM_SUBJECTS,
        "mode": mode,
        "decided": _decided(user, record),
        "asks_facts": mode == "review" or (mode == "appeal" and releases_on_overturn),
        "releases_on_overturn": releases_on_overturn,
        "values": values,
        "errors": errors,
        "field_errors": {e["href"][1:]: e["text"] for e in errors},
        "notices_deferred": [n for n in record.notices if n.status == "deferred"],
    }
    if mode is None:
        context["title"] = "Request from " + requester["name"]
    return render(request, "review_request.html", context, status=status)


@router.get("/review/requests/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, request_id: str) -> HTMLResponse:
    user = require_user(request, *REVIEWERS)
    service = service_of(request)
    return render_request(request, service, user, held_record(service, user, request_id))


def _outcome(record: RequestRecord, user: WebUser) -> dict[str, Any]:
    """The panel and the log index of the decision this reviewer's role made."""
    decided = _last_decided(record)
    if user.role == APPEAL and decided is not None:
        kept = decided.result == "upheld"
        kind = "appeal_upheld" if kept else "appeal_overturned"
        title = "First decision kept" if kept else "First decision changed"
    else:
        kind = "reviewed"
        title = "Released" if record.release is not None else "Refused"
    index = next((e.log_index for e in reversed(record.events) if e.kind == kind), None)
    return {"title": title, "log_index": index}


@router.get("/review/requests/{request_id}/decided", response_class=HTMLResponse)
def decided_page(request: Request, request_id: str) -> Response:
    """Where a decision lands (post-redirect-get): what was done, and what happens next."""
    user = require_user(request, *REVIEWERS)
    service = service_of(request)
    record = held_record(service, user, request_id)
    if not _decided(user, record):
        return RedirectResponse(f"/review/requests/{record.id}", status_code=303)
    outcome = _outcome(record, user)
    release = record.release
    context = {
        "title": outcome["title"],
        "outcome": outcome,
        "record": record,
        "requester": organisation(service, record.requester),
        "release": release,
        "people": len(record.subjects),
        "released_to": sum(len(g.subjects) for g in release.groups) if release else 0,
        "sent": [n for n in record.notices if n.status == "sent"],
        "deferred": [n for n in record.notices if n.status == "deferred"],
        "appeal": _last_decided(record) if user.role == APPEAL else None,
        "appeals_waiting": sum(1 for a in record.appeals if a.result is None),
    }
    return render(request, "review_done.html", context)
