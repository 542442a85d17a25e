"""What the data protection officer's pages share: who may see them, and the search.

A DPO signs in with an ``admin`` token of their organisation. Scoping is the JSON API's own
(:mod:`carewall.api.requests`): the DPO sees only requests their organisation *holds*
(``list_requests(holder=…)``, never ones it made as requester), a request held elsewhere
answers exactly like one that does not exist (404), and a record comes through
:func:`~carewall.api.requests.record_in_scope`, so it is redacted exactly as ``GET
/api/requests/{id}/record`` redacts it for an admin token (contract §2: no subject
references, officers' details, necessity, review note or appeal grounds).

The search is a GET form, so a search can be bookmarked and paged. Its one free-text field
is the requester's reference: the requesting body's case number, never a subject's
identifier; the API's admin record shows it too. Pages are never cached, send no referrer,
and ``carewall serve`` keeps no access log, so the URL goes nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse

from carewall import labels
from carewall.api.requests import record_in_scope
from carewall.errors import NotFoundError
from carewall.service import Outcome, RequestRecord, Service, Stage
from carewall.web.security import WebUser, require_user
from carewall.web.templating import render

__all__ = [
    "ADMIN",
    "PAGE_SIZE",
    "STATES",
    "Search",
    "day",
    "dpo_user",
    "organisation",
    "own_record",
    "page",
    "page_number",
    "pages",
    "parse_search",
    "recorded",
    "service_of",
    "shown_outcome",
    "state_label",
    "when",
]

ADMIN = "admin"
PAGE_SIZE = 25
REFERENCE_MAX = 200  # as the request document allows (carewall.policy.request)
MAX_PAGE_DIGITS = 9
# Outcomes first (what people look for), then the stages; "withdrawn" is both, shown once.
STATES: tuple[str, ...] = tuple(
    dict.fromkeys([*(o.value for o in Outcome), *(s.value for s in Stage)])
)
_DIGITS = re.compile(r"[0-9]{1,4}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)  # as the API's path parameter
_DATES = {"from": "Date received from", "to": "Date received to"}


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")  # fmt: skip


def day(t: str | None, *, short: bool = False) -> str:
    """An RFC 3339 time or a date as GOV.UK writes dates: "21 November 2026"."""
    if not t:
        return ""
    try:
        d = date.fromisoformat(t[:10])
    except ValueError:
        return t
    month = _MONTHS[d.month - 1]
    return f"{d.day} {month[:3] if short else month} {d.year}"


def when(t: str | None) -> str:
    """An RFC 3339 time as GOV.UK writes times: "21 November 2026 at 10:30am (UTC)"."""
    if not t:
        return ""
    try:
        hour, minute = int(t[11:13]), int(t[14:16])
    except ValueError:
        return day(t)
    if (hour, minute) == (0, 0):
        clock = "midnight"
    elif (hour, minute) == (12, 0):
        clock = "midday"
    else:
        mins = f":{minute:02}" if minute else ""
        clock = f"{hour % 12 or 12}{mins}{'am' if hour < 12 else 'pm'}"
    return f"{day(t)} at {clock} (UTC)"


def page(
    request: Request, template: str, context: dict[str, Any], *, status: int = 200
) -> HTMLResponse:
    """Render a DPO page, with the date helpers ``day`` and ``when`` for its template."""
    return render(request, template, {"day": day, "when": when, **context}, status=status)


def dpo_user(request: Request) -> WebUser:
    """The signed-in DPO (admin token); 401 to sign in, 403 for a reviewer."""
    return require_user(request, ADMIN)


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def own_record(service: Service, user: WebUser, request_id: str) -> RequestRecord:
    """The record, redacted as the admin API redacts it, if the DPO's organisation holds it;
    otherwise the same 404 as for a request that does not exist (an odd id included)."""
    if not _REQUEST_ID.fullmatch(request_id):
        raise NotFoundError("no such request", field="id", fix="check the request id")
    return record_in_scope(service, user.principal, request_id)


def organisation(service: Service, org_id: str) -> dict[str, str]:
    """An organisation's id, name and function (retired ones too), for a page."""
    org = service.register().any_organisation(org_id)
    return {
        "id": org_id,
        "name": org.name if org else org_id,
        "function": org.function if org else "other_public_body",
    }


def state_label(state: str) -> str:
    return labels.label("outcome" if state in {o.value for o in Outcome} else "state", state)


def shown_outcome(stage: str, outcome: str) -> str:
    """A request withdrawn before outcomes said so still shows as withdrawn (as the CLI)."""
    return Outcome.WITHDRAWN.value if stage == Stage.WITHDRAWN.value else outcome


def recorded(
    service: Service, user: WebUser, action: str, details: Sequence[Mapping[str, Any]]
) -> None:
    """Record in the private admin log what the DPO looked at, one row each (ids only).

    Written before the page is shown, so nothing is shown that was not recorded.
    """
    service.record_admin(user.organisation, user.principal.token_id, action, details)


# ----- the search -----------------------------------------------------------------------


def _item(text: str, anchor: str) -> dict[str, str]:
    return {"text": text, "href": f"#{anchor}"}


@dataclass
class Search:
    """A search as asked (``values`` refill the form) and as the service takes it."""

    values: dict[str, str] = field(default_factory=dict)
    reference: str | None = None
    since: str | None = None
    until: str | None = None
    state: str | None = None
    page: int = 1
    errors: list[dict[str, str]] = field(default_factory=list)
    # which parts of which field are wrong: {"from": {"day", "month"}, "reference": set()}
    wrong: dict[str, set[str]] = field(default_factory=dict)

    def filters(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "since": self.since,
            "until": self.until,
            "state": self.state,
        }

    def query(self, page: int | None = None) -> str:
        """The search as a query string (``?…``), with ``page`` if given; "" for none."""
        pairs = [(k, v) for k, v in self.values.items() if v]
        if page is not None and page > 1:
            pairs.append(("page", str(page)))
        return "?" + urlencode(pairs) if pairs else ""

    @property
    def active(self) -> bool:
        return any(v for v in self.values.values())

    def error_for(self, name: str) -> dict[str, str] | None:
        for e in self.errors:
            if e["href"].split("#", 1)[1].split("-", 1)[0] == name:
                return {"text": e["text"]}
        return None


def _date(search: Search, params: Mapping[str, str], name: str) -> str | None:
    """The day of date input ``name`` (``name-day``, ``-month``, ``-year``) as YYYY-MM-DD."""
    parts = {p: params.get(f"{name}-{p}", "").strip()[:10] for p in ("day", "month", "year")}
    for p, v in parts.items():
        search.values[f"{name}-{p}"] = v
    given = [p for p, v in parts.items() if v]
    if not given:
        return None
    what = _DATES[name]
    missing = [p for p in parts if not parts[p]]
    if missing:
        search.wrong[name] = set(missing)
        search.errors.append(_item(f"{what} must include a {missing[0]}", f"{name}-{missing[0]}"))
        return None
    try:
        if not all(_DIGITS.fullmatch(v) for v in parts.values()) or len(parts["year"]) != 4:
            raise ValueError
        day = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except ValueError:
        search.wrong[name] = {"day", "month", "year"}
        search.errors.append(_item(f"{what} must be a real date", f"{name}-day"))
        return None
    return day.isoformat()


def parse_search(params: Mapping[str, str]) -> Search:
    """Read and check the search form; problems go to ``errors`` for the error summary."""
    search = Search()
    reference = params.get("reference", "")[: REFERENCE_MAX * 4].strip()
    search.values["reference"] = reference
    if len(reference) > REFERENCE_MAX:
        search.wrong["reference"] = set()
        search.errors.append(
            _item(f"Reference must be {REFERENCE_MAX} characters or fewer", "reference")
        )
    elif _CONTROL.search(reference):  # no reference holds one; PostgreSQL refuses a NUL
        search.wrong["reference"] = set()
        search.errors.append(
            _item(
                "Reference must not include tabs, line breaks or other control characters",
                "reference",
            )
        )
        search.values["reference"] = _CONTROL.sub("", reference)  # never echoed back
    else:
        search.reference = reference or None
    search.since = _date(search, params, "from")
    search.until = _date(search, params, "to")
    if search.since and search.until and search.until < search.since:
        search.wrong["to"] = {"day", "month", "year"}
        search.errors.append(
            _item("Date received to must be the same as or after date received from", "to-day")
        )
        search.until = None
    state = params.get("state", "")[:40]
    search.values["state"] = state if state in STATES else ""
    if state and state not in STATES:
        search.wrong["state"] = set()
        search.errors.append(_item("Select a state from the list", "state"))
    else:
        search.state = state or None
    search.page = page_number(params)
    return search


def page_number(params: Mapping[str, str]) -> int:
    """The ``page`` asked for: a whole number from 1 (anything else is page 1; a page past
    the last is the last, which the caller knows)."""
    raw = params.get("page", "")
    if raw.isascii() and raw.isdigit() and len(raw) <= MAX_PAGE_DIGITS:
        return max(1, int(raw))
    return 1


def pages(search: Search, total: int, size: int, path: str) -> dict[str, Any] | None:
    """GOV.UK pagination for ``total`` results (None when one page holds them all)."""
    last = max(1, -(-total // size))
    if last == 1:
        return None
    current = min(search.page, last)
    shown = sorted({1, last, current - 1, current, current + 1} & set(range(1, last + 1)))
    items: list[dict[str, Any]] = []
    for i, n in enumerate(shown):
        if i and n - shown[i - 1] > 1:
            items.append({"ellipsis": True})
        items.append({"number": n, "href": path + search.query(n), "current": n == current})
    out: dict[str, Any] = {"items": items, "landmarkLabel": "Pages of results"}
    if current > 1:
        out["previous"] = {"href": path + search.query(current - 1)}
    if current < last:
        out["next"] = {"href": path + search.query(current + 1)}
    return out
