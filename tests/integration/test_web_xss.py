"""Hostile text never becomes markup on any page.

A requester writes its reference, officers, necessity and subject references; an operator
types organisation names and agreements' titles; a subject types appeal grounds. Each is
set here to a script or an attribute break-out, then every page that could show it is
fetched (as the public, the subject, the holder's reviewers and its DPO) and must hold the
text escaped, never live.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from agreement_support import agreement
from api_support import HOLDER, Tokens, access_code, reviewable
from fastapi.testclient import TestClient

from carewall.service import Service

HTML = {"accept": "text/html"}
SCRIPT = "<script>alert(1)</script>"
BREAKOUT = '"><img src=x onerror=alert(2)>'
LIVE = re.compile(r"<script>alert|<img src=x", re.IGNORECASE)


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def _sign_in(client: TestClient, token: str) -> None:
    client.cookies.clear()
    page = client.get("/sign-in", headers=HTML)
    r = client.post("/sign-in", data={"csrf_token": _csrf(page), "token": token}, headers=HTML)
    assert r.status_code == 200, r.text[:500]


@pytest.fixture
def hostile(
    served: tuple[TestClient, Service, Tokens],
) -> Iterator[tuple[TestClient, Service, Tokens, dict[str, str]]]:
    client, service, tokens = served
    client.base_url = httpx.URL("https://testserver")
    service.add_organisation("xss-police", "Police " + SCRIPT, "police")
    doc = reviewable(
        requester="xss-police",
        reference="REF" + BREAKOUT,
        necessity="Needed " + SCRIPT,
        officer={"name": "DC " + SCRIPT, "role": BREAKOUT, "contact": "x@example.org"},
        subjects=[{"ref": "SUBJ" + BREAKOUT, "is_child": False, "is_victim_or_witness": False}],
    )
    ids = {"released": service.submit(doc).id, "waiting": service.submit(doc).id}
    service.review(ids["released"], "dpo-islington", True, "note " + SCRIPT)
    service.deliver_pending()
    ids["code"] = access_code(service, ids["released"])
    service.subject_appeal(ids["released"], ids["code"], "grounds " + SCRIPT + BREAKOUT)
    start = datetime.now(UTC).date() - timedelta(days=30)
    odd = agreement("xss-isa", start, recipient="xss-police", title="ISA " + SCRIPT + BREAKOUT)
    service.register_agreement(odd)
    yield client, service, tokens, ids


def _assert_inert(response: httpx.Response, where: str) -> None:
    assert response.status_code == 200, f"{where}: {response.status_code}"
    live = LIVE.search(response.text)
    if live is not None:
        context = response.text[max(0, live.start() - 80) : live.end() + 20]
        raise AssertionError(f"{where} renders hostile text as markup: …{context}…")


def test_hostile_text_is_inert_on_every_page(
    hostile: tuple[TestClient, Service, Tokens, dict[str, str]],
) -> None:
    client, service, tokens, ids = hostile
    for path in ("/", "/statistics", "/log/", "/my-data"):
        _assert_inert(client.get(path, headers=HTML), path)
    form = client.get("/my-data", headers=HTML)
    seen = client.post(
        "/my-data",
        data={"csrf_token": _csrf(form), "request_id": ids["released"], "code": ids["code"]},
        headers=HTML,
    )
    assert seen.status_code == 200 and "What was shared" in seen.text
    _assert_inert(seen, "/my-data result")
    _sign_in(client, tokens.release)
    for path in (
        "/review",
        f"/review/requests/{ids['waiting']}",
        f"/review/requests/{ids['released']}",
    ):
        _assert_inert(client.get(path, headers=HTML), path)
    _sign_in(client, tokens.appeal)
    for path in ("/review", f"/review/requests/{ids['released']}"):
        _assert_inert(client.get(path, headers=HTML), path)
    _sign_in(client, tokens.admin)
    (notice,) = service.notices(ids["released"])
    for path in (
        "/dpo/requests",
        f"/dpo/requests?reference=REF{BREAKOUT}",
        f"/dpo/requests/{ids['released']}",
        "/dpo/notices",
        f"/dpo/notices/{notice.id}/letter",
        "/dpo/register",
        "/dpo/agreements",
        "/dpo/agreements/xss-isa/withdraw",
    ):
        _assert_inert(client.get(path, headers=HTML), path)
    assert HOLDER  # the holder whose reviewers and DPO looked


def test_hostile_text_never_starts_a_formula_in_the_csv(
    hostile: tuple[TestClient, Service, Tokens, dict[str, str]],
) -> None:
    client, service, tokens, _ids = hostile
    service.submit(reviewable(reference='=HYPERLINK("http://evil.example")'))
    _sign_in(client, tokens.admin)
    csv_text = client.get("/dpo/requests.csv").text
    for line in csv_text.splitlines()[1:]:
        for cell in line.split(","):
            assert not cell.lstrip('"').startswith(("=", "+", "-", "@")), line
