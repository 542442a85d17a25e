"""The person whose data it is: ``/my-data``, what was shared about them, and their appeal.

The pages do what ``POST /api/subject/view`` and ``/api/subject/appeal`` do, through the
same service methods and under the same limiter (:mod:`carewall.api.ratelimit`): a wrong
code counts as a failure for the client, and for the request id from that client, and a
blocked visitor is told how long to wait (429, ``Retry-After``) before the code is even
checked. Only a visitor's own wrong codes block them: someone else's, for the same request
id, never lock the person out of their page or their appeal. The request id
and access code travel only in form bodies: the result is rendered straight from the POST,
and the appeal form carries them back as hidden fields, so the code is never in a URL, a
query string, a cookie or the browser's history. A wrong id or code gets one message,
whichever was wrong, that says nothing about whether the request exists.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from carewall.api.ratelimit import limiter_of
from carewall.api.requests import service_of
from carewall.deadlines import appeal_decide_by
from carewall.errors import AuthError, CarewallError, RateLimitError
from carewall.ids import is_id
from carewall.service import Service, SubjectView
from carewall.web.forms import form_of
from carewall.web.security import CSRF_FIELD, check_csrf
from carewall.web.subject_check import check_view
from carewall.web.templating import render

__all__ = ["CODE_MAX", "GROUNDS_MAX", "router"]

router = APIRouter(include_in_schema=False)

# The API's limits (carewall.api.models: SubjectViewIn.code, SubjectAppealIn.grounds).
CODE_MAX = 200
GROUNDS_MAX = 10_000

_ID, _CODE, _GROUNDS = "request-id", "code", "grounds"  # the fields' ids on the pages
_WRONG = "The request ID and access code do not match. Check both against your letter and try again"
_T = TypeVar("_T")

try:
    _UK: Any = ZoneInfo("Europe/London")
except ZoneInfoNotFoundError:  # no time zone data: say UTC rather than guess
    _UK = UTC


def _item(text: str, field: str) -> dict[str, str]:
    return {"text": text, "href": f"#{field}"}


def _client(request: Request) -> str:
    # As the API (carewall.api.subject): the peer address uvicorn gives, never a header.
    return request.client.host if request.client else "unknown"


def _guarded(request: Request, request_id: str, call: Callable[[], _T]) -> _T:
    """Run ``call`` unless blocked (RateLimitError); a wrong code counts as a failure.

    The same checks, in the same order, as the API's ``_limited``, on the same limiter.
    """
    limiter = limiter_of(request.app)
    client = _client(request)
    limiter.check(request_id, client)
    try:
        return call()
    except AuthError:
        limiter.failure(request_id, client)
        raise


def when(stamp: str | None) -> str:
    """``2026-11-21T10:00:00Z`` as ``21 November 2026 at 10:00am`` (UK time)."""
    try:
        t = datetime.fromisoformat(str(stamp)).astimezone(_UK)
    except ValueError:
        return stamp or ""
    suffix = " (UTC)" if _UK is UTC else ""
    return f"{t.day} {t:%B %Y} at {t.hour % 12 or 12}:{t:%M}{'am' if t.hour < 12 else 'pm'}{suffix}"


def decide_by(lodged: str | None) -> str:
    """The day an appeal lodged at ``lodged`` must be decided by, as ``4 March 2027``
    (:data:`carewall.deadlines.APPEAL_DAYS` later, UK time); "" if ``lodged`` is no time."""
    try:
        t = appeal_decide_by(str(lodged)).astimezone(_UK)
    except ValueError:
        return ""
    return f"{t.day} {t:%B %Y}"


def _credentials(form: dict[str, str]) -> tuple[str, str, list[dict[str, str]]]:
    """The request id and code as typed (surrounding spaces dropped), and what is wrong."""
    rid = form.get("request_id", "").strip()
    code = form.get("code", "").strip()
    errors = []
    if not rid:
        errors.append(_item("Enter the request ID from your letter", _ID))
    elif not is_id(rid, "request"):
        errors.append(
            _item(
                "Request ID must be the letter r followed by 20 numbers and letters from a "
                "to f, as on your letter",
                _ID,
            )
        )
    if not code:
        errors.append(_item("Enter the access code from your letter", _CODE))
    elif len(code) > CODE_MAX:
        errors.append(_item("Enter the access code exactly as it is on your letter", _CODE))
    return rid, code, errors


def _form(
    request: Request,
    errors: list[dict[str, str]] | None = None,
    *,
    status: int = 200,
    request_id: str = "",
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The form; the code is never put back in it."""
    field_errors = {e["href"][1:]: e["text"] for e in errors or []}
    if errors and errors[0]["text"] == _WRONG:
        field_errors[_CODE] = _WRONG  # one message for the pair, shown on both fields
    context = {
        "title": "See what was shared about you",
        "errors": errors,
        "field_errors": field_errors,
        "request_id": request_id[:100],
    }
    return render(request, "my_data.html", context, status=status, headers=headers)


def _refused(request: Request, e: CarewallError, request_id: str) -> HTMLResponse:
    """The form again after the code check failed, or was not even made (blocked)."""
    if isinstance(e, RateLimitError):
        minutes = max(1, -(-e.retry_after // 60))
        wait = "1 minute" if minutes == 1 else f"{minutes} minutes"
        text = (
            "You have entered a wrong request ID or access code too many times. "
            f"Wait {wait}, then try again"
        )
        headers = {"Retry-After": str(e.retry_after)}
        return _form(request, [_item(text, _CODE)], status=429, headers=headers)
    if isinstance(e, AuthError):
        return _form(request, [_item(_WRONG, _ID)], status=401, request_id=request_id)
    return _form(
        request, [_item("Sorry, there is a problem. Try again later", _ID)], status=e.status
    )


def _expired(request: Request) -> HTMLResponse:
    text = "This form has expired. Enter the request ID and access code from your letter again"
    return _form(request, [_item(text, _ID)], status=403)


def title_of(view: SubjectView) -> str:
    """The result page's title and heading: whether anything was shared, in its words."""
    return "What was shared about you" if view.categories else "A request for information about you"


def decided_by(view: SubjectView) -> str | None:
    """The role (never the person) of whoever released: the service checks it holds it."""
    if view.release_index is None:
        return None
    if view.released_on_appeal:
        return "appeal_reviewer"  # a refusal overturned on appeal is released by them
    return "release_reviewer"


def _commands(request: Request, service: Service, view: SubjectView) -> dict[str, str]:
    # The configured public address, never the Host header a visitor sent.
    public_url: str | None = getattr(request.app.state, "public_url", None)
    base = public_url.rstrip("/") if public_url else "URL"
    out = {"audit": f"carewall audit {base} --key {service.ledger.verifier_key}"}
    i, size = view.release_index, view.tree_size
    if i is not None and size is not None:
        out["proof"] = f"curl '{base}/log/proof/inclusion?index={i}&size={size}'"
        out["entry"] = f"curl '{base}/log/entries?start={i}&end={i + 1}'"
    out["base_known"] = "yes" if public_url else ""
    return out


def _result(
    request: Request,
    service: Service,
    view: SubjectView,
    code: str,
    *,
    errors: list[dict[str, str]] | None = None,
    grounds: str = "",
    status: int = 200,
) -> HTMLResponse:
    register = service.register()
    context = {
        "title": title_of(view),
        "errors": errors,
        "field_errors": {e["href"][1:]: e["text"] for e in errors or []},
        "view": view,
        "recipient_function": register.function_of(view.recipient) if view.recipient else None,
        "released_when": when(view.released_at),
        "decided_by": decided_by(view),
        "appeal": view.appeal,
        "appeal_lodged": when(view.appeal.lodged_at) if view.appeal else "",
        "appeal_decided": when(view.appeal.decided_at) if view.appeal else "",
        "appeal_decide_by": decide_by(view.appeal.lodged_at) if view.appeal else "",
        "check": check_view(
            service, view, [w.key for w in getattr(request.app.state, "witnesses", ())]
        ),
        "commands": _commands(request, service, view),
        "origin": service.ledger.origin,
        "vkey": service.ledger.verifier_key,
        # carried back in the appeal form's body (never a URL): the person typed them
        "request_id": view.request_id,
        "code": code,
        "grounds": grounds,
        "grounds_max": GROUNDS_MAX,
    }
    return render(request, "my_data_result.html", context, status=status)


@router.get("/my-data", response_class=HTMLResponse)
def my_data_page(request: Request) -> HTMLResponse:
    return _form(request)


async def _posted_credentials(
    request: Request,
) -> HTMLResponse | tuple[dict[str, str], str, str]:
    """The posted form, Request ID and access code; or the page to answer with instead (an
    expired form, or the sign-in form with what is wrong with the two fields)."""
    form = await form_of(request)
    try:
        check_csrf(request, form.get(CSRF_FIELD))
    except CarewallError:
        return _expired(request)
    rid, code, errors = _credentials(form)
    if errors:
        return _form(request, errors, status=400, request_id=rid)
    return form, rid, code


@router.post("/my-data", response_class=HTMLResponse)
async def my_data_post(request: Request) -> HTMLResponse:
    posted = await _posted_credentials(request)
    if isinstance(posted, HTMLResponse):
        return posted
    _form_data, rid, code = posted
    service = service_of(request)
    try:
        view = _guarded(request, rid, lambda: service.subject_view(rid, code))
    except CarewallError as e:
        return _refused(request, e, rid)
    return _result(request, service, view, code)


def _appeal_problems(view: SubjectView, grounds: str) -> tuple[list[dict[str, str]], int]:
    if view.appeal is not None and view.appeal.by == "subject":  # only ever their own
        return [
            _item("You have already appealed. What is happening to it is shown below", "appeal")
        ], 409
    if not view.can_appeal:
        return [_item("You cannot appeal against this decision online", "appeal")], 409
    if not grounds.strip():
        return [_item("Enter why you want to appeal", _GROUNDS)], 400
    if len(grounds) > GROUNDS_MAX:
        limit = f"{GROUNDS_MAX:,}"
        return [_item(f"Why you want to appeal must be {limit} characters or fewer", _GROUNDS)], 400
    return [], 200


@router.post("/my-data/appeal", response_class=HTMLResponse)
async def my_data_appeal(request: Request) -> HTMLResponse:
    posted = await _posted_credentials(request)
    if isinstance(posted, HTMLResponse):
        return posted
    form, rid, code = posted
    # Browsers send a textarea's line breaks as CRLF; count them as the character count does.
    grounds = form.get("grounds", "").replace("\r\n", "\n")
    service = service_of(request)

    def attempt() -> tuple[SubjectView, list[dict[str, str]], int]:
        view = service.subject_view(rid, code)
        problems, status = _appeal_problems(view, grounds)
        if problems:
            return view, problems, status
        try:
            service.subject_appeal(rid, code, grounds)
        except AuthError:
            raise
        except CarewallError as e:  # appealed meanwhile, say: show where it stands now
            text = "Your appeal could not be sent. Where things stand now is shown below"
            return service.subject_view(rid, code), [_item(text, "appeal")], e.status
        return service.subject_view(rid, code), [], 200

    try:
        view, problems, status = _guarded(request, rid, attempt)
    except CarewallError as e:
        return _refused(request, e, rid)
    if problems:
        return _result(
            request, service, view, code, errors=problems, grounds=grounds, status=status
        )
    context = {
        "title": "Appeal sent",
        "view": view,
        "appeal_decide_by": decide_by(view.appeal.lodged_at) if view.appeal else "",
    }
    return render(request, "my_data_appeal_sent.html", context)
