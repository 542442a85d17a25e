"""``/dpo/agreements``: the holder's data-sharing agreements, and what each still owes.

Scoped as ``GET /api/agreements`` scopes it: ``list_agreements(holder=…)``, the DPO's own
organisation's agreements, refused ones included. Another holder's agreement answers like
one that does not exist (404), and so does an id that is no id. An agreement holds no
personal data: ids, the parties, the purpose, dates and counts, and its title (the holder's
own words, shown to its DPO as the admin API shows it). No request is named on the page.

Each agreement's standing is judged on the service's clock (:func:`~carewall.service.
agreement_records.today`, the day its ``overdue`` flag is judged on), not the log's own
date, so the page warns before the public statistics and the auditor count anything:

- registered, with no end or not past it: **Registered**;
- registered and past its end: what went under it is counted as the withdrawal counts it
  (:func:`~carewall.service.agreements.released_so_far`, the same ``ReleaseIndex``).
  Nothing: **Ended**, nothing owed. Something: **Ended — withdraw by D** until
  :func:`~carewall.deadlines.agreement_withdraw_by` its end, then **Ended — not withdrawn**
  (the auditor fails it; the statistics count it as ``ended_not_withdrawn``);
- withdrawn: **Withdrawn — destruction due D**, past D without a certificate
  **Destruction overdue**, or just **Withdrawn** when nothing went (none is asked for);
- **Destroyed** (the recipient's certificate registered) and **Refused** owe nothing.

``/dpo/agreements/{id}/withdraw`` asks the DPO to confirm; its POST (the CSRF token first,
then the role, then the scope, as the reviewers' forms) calls the service's own withdrawal,
as ``POST /api/agreements/{id}/withdraw`` does, with the default days for destruction.
Registering a deletion certificate stays on the command line (``carewall agreement
destroyed``), as does choosing other days (``--due-days``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carewall.deadlines import AGREEMENT_END_GRACE_DAYS, agreement_withdraw_by
from carewall.errors import ConflictError, NotFoundError
from carewall.ids import is_id
from carewall.policy.agreements import Released
from carewall.service import Service
from carewall.service.agreement_records import (
    AgreementRecord,
    get_agreement,
    list_agreements,
    today,
)
from carewall.service.agreements import DEFAULT_DUE_DAYS, released_so_far
from carewall.web.dpo_common import (
    PAGE_SIZE,
    Search,
    day,
    dpo_user,
    organisation,
    page,
    page_number,
    pages,
    service_of,
)
from carewall.web.forms import form_of
from carewall.web.security import CSRF_FIELD, WebUser, check_csrf

__all__ = ["Standing", "router", "standing"]

router = APIRouter(include_in_schema=False)

# What an agreement owes, most urgent first: the page lists them in this order.
OWES = ("late", "overdue", "withdraw", "destroy", "")


@dataclass(frozen=True)
class Standing:
    """Where an agreement stands today: its tag, and what it owes (a key of :data:`OWES`)."""

    tag: str
    colour: str  # a GOV.UK tag colour; "" for the default (blue)
    owes: str = ""
    by: str | None = None  # the day it owes it by (YYYY-MM-DD)
    releases: int = 0  # made under it so far (registered) or counted when withdrawn


def ended(record: AgreementRecord, on_day: str) -> bool:
    """A registered agreement whose end date is before ``on_day``."""
    end = record.terms.get("end")
    return record.state == "registered" and isinstance(end, str) and end < on_day


def standing(record: AgreementRecord, on_day: str, went: Released | None = None) -> Standing:
    """Where ``record`` stands on the day ``on_day``; ``went``: what the log released under
    it so far (needed only when it has :func:`ended`)."""
    if record.state == "refused":
        return Standing("Refused", "grey")
    if record.state == "destroyed":
        return Standing("Destroyed", "green", releases=record.releases or 0)
    if record.state == "withdrawn":
        releases = record.releases or 0
        if record.due is None:
            return Standing("Withdrawn", "grey")
        if record.due < on_day:  # as the service's ``overdue``, on the day asked about
            return Standing("Destruction overdue", "red", "overdue", record.due, releases)
        return Standing(f"Withdrawn — destruction due {day(record.due)}", "yellow", "destroy",
                        record.due, releases)  # fmt: skip
    if not ended(record, on_day):
        return Standing("Registered", "")  # the design system's own blue
    if went is None or not went.releases:
        return Standing("Ended", "grey")
    by = agreement_withdraw_by(str(record.terms["end"]))
    if by < on_day:
        return Standing("Ended — not withdrawn", "red", "late", by, went.releases)
    return Standing(f"Ended — withdraw by {day(by)}", "orange", "withdraw", by, went.releases)


def _standings(service: Service, records: Sequence[AgreementRecord], on_day: str) -> list[Standing]:
    """Each record's standing on ``on_day``; the log is read only if an agreement ended."""
    went = released_so_far(service, [r for r in records if ended(r, on_day)])
    return [standing(r, on_day, went.get(r.id)) for r in records]


def _no_such() -> NotFoundError:
    return NotFoundError(
        "no agreement with this id is held by your organisation",
        field="id",
        fix="check the agreement id",
    )


def own_agreement(service: Service, user: WebUser, agreement_id: str) -> AgreementRecord:
    """The agreement if the DPO's organisation holds it; else the same 404 as a missing one
    (an id that is no id included), as ``GET /api/agreements/{id}`` answers."""
    if not is_id(agreement_id, "organisation"):
        raise _no_such()
    try:
        record = get_agreement(service, agreement_id)
    except NotFoundError:
        raise _no_such() from None
    if record.terms.get("holder") != user.organisation:
        raise _no_such()
    return record


def _dates(terms: Mapping[str, Any]) -> str:
    start, end = day(terms["start"], short=True), terms.get("end")
    return f"{start} to {day(end, short=True)}" if end else f"From {start}"


def _row(service: Service, record: AgreementRecord, s: Standing) -> dict[str, Any]:
    return {
        "id": record.id,
        "title": record.title,
        "recipient": organisation(service, record.terms["recipient"])["name"],
        "purpose": record.terms["purpose"],
        "dates": _dates(record.terms),
        "s": s,
        "by": day(s.by) if s.by else "",
    }


def _banner(records: Sequence[AgreementRecord], withdrawn: str) -> dict[str, str] | None:
    """After a withdrawal here: what now stands for that agreement (read, never trusted)."""
    record = next((r for r in records if r.id == withdrawn), None)
    if record is None or record.state not in ("withdrawn", "destroyed"):
        return None
    return {"id": record.id, "due": day(record.due) if record.due else ""}


@router.get("/dpo/agreements", response_class=HTMLResponse)
def agreements_page(request: Request) -> HTMLResponse:
    user = dpo_user(request)
    service = service_of(request)
    records = list_agreements(service, holder=user.organisation)
    on_day = today(service)  # the service's clock, as `overdue` is judged; not the log's
    pairs = sorted(
        zip(records, _standings(service, records, on_day), strict=True),
        key=lambda p: (OWES.index(p[1].owes), p[1].by or "", p[0].id),
    )
    owing = {key: sum(1 for _, s in pairs if s.owes == key) for key in OWES if key}
    search = Search(page=page_number(request.query_params))
    search.page = min(search.page, max(1, -(-len(pairs) // PAGE_SIZE)))
    start = (search.page - 1) * PAGE_SIZE
    context = {
        "title": "Data-sharing agreements",
        "organisation": organisation(service, user.organisation),
        "today": day(on_day),
        "total": len(pairs),
        "owing": owing,
        "rows": [_row(service, r, s) for r, s in pairs[start : start + PAGE_SIZE]],
        "pagination": pages(search, len(pairs), PAGE_SIZE, "/dpo/agreements"),
        "banner": _banner(records, request.query_params.get("withdrawn", "")[:100]),
        "due_days": DEFAULT_DUE_DAYS,
        "grace_days": AGREEMENT_END_GRACE_DAYS,
    }
    return page(request, "dpo_agreements.html", context)


def _withdrawable(service: Service, user: WebUser, agreement_id: str) -> AgreementRecord:
    record = own_agreement(service, user, agreement_id)
    if record.state != "registered":
        raise ConflictError(
            f"agreement {record.id} is {record.state}, so it cannot be withdrawn",
            field="id",
            fix="only a registered agreement can be withdrawn, once",
        )
    return record


@router.get("/dpo/agreements/{agreement_id}/withdraw", response_class=HTMLResponse)
def confirm_page(request: Request, agreement_id: str) -> HTMLResponse:
    user = dpo_user(request)
    service = service_of(request)
    record = _withdrawable(service, user, agreement_id)
    went = released_so_far(service, [record])[record.id]
    context = {
        "title": f"Withdraw agreement {record.id}",
        "back": "/dpo/agreements",
        "row": _row(service, record, standing(record, today(service), went)),
        "went": went,
        "due_days": DEFAULT_DUE_DAYS,
    }
    return page(request, "dpo_agreement_withdraw.html", context)


@router.post("/dpo/agreements/{agreement_id}/withdraw")
async def withdraw(request: Request, agreement_id: str) -> Response:
    """Withdraw it, as ``POST /api/agreements/{id}/withdraw`` does; 409 if it moved on."""
    form = await form_of(request)
    check_csrf(request, form.get(CSRF_FIELD))
    user = dpo_user(request)
    service = service_of(request)
    record = await run_in_threadpool(_withdrawable, service, user, agreement_id)
    await run_in_threadpool(service.withdraw_agreement, record.id)
    return RedirectResponse(f"/dpo/agreements?withdrawn={record.id}", status_code=303)
