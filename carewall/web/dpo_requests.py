"""``/dpo/requests``: the register of requests held by the DPO's organisation, one request's
record with its events, and the register as CSV.

Lists come from ``service.list_requests(holder=…)`` with the same filters as ``carewall
requests`` (reference, days received, state), as ``GET /api/requests`` lists them for an
admin token; a record comes through the admin API's own scoping and redaction
(:mod:`carewall.web.dpo_common`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from carewall.errors import InputError
from carewall.labels import offence_text
from carewall.service import RequestRecord, RequestSummary, Service
from carewall.web.dpo_common import (
    PAGE_SIZE,
    STATES,
    Search,
    day,
    dpo_user,
    organisation,
    own_record,
    page,
    pages,
    parse_search,
    service_of,
    shown_outcome,
    state_label,
)
from carewall.web.dpo_export import csv_response

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

SUBJECTS_SHOWN = 200  # people listed on a record page; the CSV and the count cover them all
_SERVICE_FIELDS = {"since": "from-day", "until": "to-day", "reference": "reference"}


def _found(service: Service, org: str, search: Search) -> list[RequestSummary]:
    """The organisation's requests that match, oldest first (the API's holder scoping)."""
    if search.errors:
        return []
    try:
        return service.list_requests(holder=org, **search.filters())
    except InputError as e:  # the service's own check of the days, should ours miss one
        anchor = _SERVICE_FIELDS.get(e.field or "", "main-content")
        search.errors.append(
            {"text": "Enter real dates received, from and to", "href": f"#{anchor}"}
        )
        return []


def _row(service: Service, s: RequestSummary) -> dict[str, Any]:
    return {
        "id": s.id,
        "received": day(s.received_at, short=True),
        "requester": organisation(service, s.requester)["name"],
        "purpose": s.purpose,
        "stage": s.stage,
        "outcome": shown_outcome(s.stage, s.outcome),
    }


@router.get("/dpo/requests", response_class=HTMLResponse)
def register_page(request: Request) -> HTMLResponse:
    user = dpo_user(request)
    service = service_of(request)
    search = parse_search(request.query_params)
    found = _found(service, user.organisation, search)
    last = max(1, -(-len(found) // PAGE_SIZE))
    search.page = min(search.page, last)
    start = (search.page - 1) * PAGE_SIZE
    context = {
        "title": "Requests register",
        "organisation": organisation(service, user.organisation),
        "search": search,
        "states": [{"value": s, "text": state_label(s)} for s in STATES],
        "total": len(found),
        "first": start + 1,
        "rows": [_row(service, s) for s in found[start : start + PAGE_SIZE]],
        "pagination": pages(search, len(found), PAGE_SIZE, "/dpo/requests"),
        "csv": "/dpo/requests.csv" + search.query(),
        "errors": search.errors,
    }
    return page(request, "dpo_requests.html", context, status=400 if search.errors else 200)


@router.get("/dpo/requests.csv", response_model=None)
def register_csv(request: Request) -> Response:
    user = dpo_user(request)
    service = service_of(request)
    search = parse_search(request.query_params)
    found = _found(service, user.organisation, search)
    if search.errors:
        return register_page(request)
    return csv_response(service, user, [s.id for s in found])


# ----- one request's record -----------------------------------------------------------------


def _decision_rows(record: RequestRecord) -> list[dict[str, Any]]:
    categories: dict[str, Any] = record.decision.get("categories") or {}
    return [
        {
            "category": cat,
            "outcome": str(d.get("outcome", "refused")),
            "rules": [str(r) for r in d.get("rules") or []],
            "released": record.release is not None and cat in record.release.categories,
        }
        for cat, d in categories.items()
        if isinstance(d, dict)
    ]


def _deferral(record: RequestRecord) -> dict[str, Any] | None:
    waiting = [n for n in record.notices if n.status == "deferred"]
    history = [e for e in record.events if e.kind.startswith("defer")]
    if not waiting and not history and not record.prejudice:
        return None
    return {
        "asked": record.prejudice,
        "waiting": len(waiting),
        "until": waiting[0].review_date if waiting else None,
        "history": history,
    }


@router.get("/dpo/requests/{request_id}", response_class=HTMLResponse)
def record_page(request: Request, request_id: str) -> HTMLResponse:
    user = dpo_user(request)
    service = service_of(request)
    record = own_record(service, user, request_id)
    context = {
        "title": f"Request {record.id}",
        "back": "/dpo/requests",
        "r": record,
        "outcome": shown_outcome(record.stage, record.outcome),
        "requester": organisation(service, record.requester),
        "holder": organisation(service, record.holder),
        "recipient": organisation(service, record.release.recipient) if record.release else None,
        "decision": _decision_rows(record),
        "offence": offence_text(record.offence) if record.offence else None,
        "subjects": record.subjects[:SUBJECTS_SHOWN],
        "more_subjects": max(0, len(record.subjects) - SUBJECTS_SHOWN),
        "deferral": _deferral(record),
        "kept": {n.id for n in record.notices if n.delivered_at and n.channel == "outbox"},
    }
    return page(request, "dpo_request.html", context)
