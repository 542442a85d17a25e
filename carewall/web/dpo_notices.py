"""``/dpo/notices``: the notices telling people their data was shared, and their letters.

The outbox lists the notices of requests the DPO's organisation holds: ids, status,
channel and dates, never an address or an access code. A letter is shown exactly as the
person has it (:func:`carewall.service.letters.kept_letter`), access code and address
included, because with the database outbox the holder prints and posts it. So a letter is
shown only to the DPO of the organisation holding the request, and every letter shown is
first recorded in the private admin log (``letter_view``, with the notice and request ids:
never the code or the address). A letter the service does not keep (deferred, not sent
yet, or mailed) is refused, never made up.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from carewall.errors import CarewallError, NotFoundError
from carewall.service import NoticeRecord, Service
from carewall.service.letters import Letter, kept_letter
from carewall.web.dpo_common import (
    PAGE_SIZE,
    Search,
    day,
    dpo_user,
    organisation,
    own_record,
    page,
    page_number,
    pages,
    recorded,
    service_of,
)
from carewall.web.security import WebUser

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

LETTERS_PER_PAGE = 50  # letters on one printable page of a request's letters
_NO_NOTICE = "no such notice"


def _status(n: NoticeRecord) -> dict[str, str]:
    """What has happened to a notice, as a tag (text and colour) and a date."""
    if n.status == "deferred":
        return {"text": "Delayed", "colour": "yellow", "when": f"Review by {day(n.review_date)}"}
    if n.delivered_at is None:
        text = "Being sent" if n.claimed_at else "Waiting to be sent"
        return {"text": text, "colour": "grey", "when": f"Due since {day(n.created_at)}"}
    if n.channel == "outbox":
        return {"text": "Ready to print", "colour": "blue", "when": day(n.delivered_at)}
    return {"text": "Sent", "colour": "green", "when": day(n.delivered_at)}


def _kept(n: NoticeRecord) -> bool:
    """Whether the service keeps this notice's letter (it went to the database outbox)."""
    return n.status == "sent" and n.delivered_at is not None and n.channel == "outbox"


def _held(service: Service, org: str) -> set[str]:
    return {s.id for s in service.list_requests(holder=org)}


@router.get("/dpo/notices", response_class=HTMLResponse)
def outbox(request: Request) -> HTMLResponse:
    user = dpo_user(request)
    service = service_of(request)
    held = _held(service, user.organisation)
    notices = [n for n in service.notices() if n.request_id in held]
    search = Search(page=page_number(request.query_params))
    last = max(1, -(-len(notices) // PAGE_SIZE))
    search.page = min(search.page, last)
    start = (search.page - 1) * PAGE_SIZE
    rows = [
        {"n": n, "status": _status(n), "kept": _kept(n)} for n in notices[start : start + PAGE_SIZE]
    ]
    context = {
        "title": "Notices to people",
        "organisation": organisation(service, user.organisation),
        "total": len(notices),
        "waiting": sum(1 for n in notices if n.status == "sent" and n.delivered_at is None),
        "to_print": sum(1 for n in notices if _kept(n)),
        "rows": rows,
        "pagination": pages(search, len(notices), PAGE_SIZE, "/dpo/notices"),
    }
    return page(request, "dpo_notices.html", context)


def _notice_id(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise NotFoundError(_NO_NOTICE, field="id", fix="check the notice number")
    return int(raw)


def _own_notice(service: Service, user: WebUser, notice_id: int) -> NoticeRecord:
    """The notice if the DPO's organisation holds its request; else the same 404 as none."""
    notice = next((n for n in service.notices() if n.id == notice_id), None)
    if notice is None:
        raise NotFoundError(_NO_NOTICE, field="id", fix="check the notice number")
    own_record(service, user, notice.request_id)  # 404 for another organisation's
    return notice


def _letter(letter: Letter) -> dict[str, Any]:
    return {
        "notice": letter.notice_id,
        "request": letter.request_id,
        "to": letter.to,
        "subject": letter.subject,
        "body": letter.body,
        "date": letter.kept_at[:10],
    }


@router.get("/dpo/notices/{notice_id}/letter", response_class=HTMLResponse)
def letter_page(request: Request, notice_id: str) -> HTMLResponse:
    user = dpo_user(request)
    service = service_of(request)
    notice = _own_notice(service, user, _notice_id(notice_id))
    letter = kept_letter(service, notice.id)  # 409 with the reason when it is not kept
    recorded(service, user, "letter_view", [{"notice": notice.id, "request": notice.request_id}])
    context = {
        "title": f"Letter for notice {notice.id}",
        "back": "/dpo/notices",
        "letters": [_letter(letter)],
        "request_id": notice.request_id,
    }
    return page(request, "dpo_letter.html", context)


@router.get("/dpo/notices/letters", response_class=HTMLResponse)
def letters_page(request: Request) -> HTMLResponse:
    user = dpo_user(request)
    service = service_of(request)
    record = own_record(service, user, request.query_params.get("request", "")[:100])
    search = Search(values={"request": record.id}, page=page_number(request.query_params))
    notices = record.notices
    last = max(1, -(-len(notices) // LETTERS_PER_PAGE))
    search.page = min(search.page, last)
    start = (search.page - 1) * LETTERS_PER_PAGE
    letters: list[Letter] = []
    not_kept: list[dict[str, Any]] = []
    for n in notices[start : start + LETTERS_PER_PAGE]:
        try:
            letters.append(kept_letter(service, n.id))
        except CarewallError:
            not_kept.append({"id": n.id, "status": _status(n)})
    recorded(
        service,
        user,
        "letter_view",
        [{"notice": x.notice_id, "request": x.request_id} for x in letters],
    )
    context = {
        "title": f"Letters for request {record.id}",
        "back": f"/dpo/requests/{record.id}",
        "letters": [_letter(x) for x in letters],
        "not_kept": not_kept,
        "request_id": record.id,
        "pagination": pages(search, len(notices), LETTERS_PER_PAGE, "/dpo/notices/letters"),
    }
    return page(request, "dpo_letter.html", context)
