"""Paging on every list route: ``limit`` (default 100, at most 1,000) and an opaque cursor.

Walking a list page by page, following each ``Link: <…>; rel="next"``, gives exactly the
whole list, in order, once; the last page has no link. The cursor is a keyset position,
so a request reviewed (leaving the queue) while a reviewer pages through it neither
repeats nor skips another. A bad limit or cursor is a 422 naming it. The OpenAPI document
says all this on every list route.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_support import HOLDER, Tokens, api, refused, reviewable
from fastapi.testclient import TestClient

from carewall.api.admin import issue_token
from carewall.service import Service

# (path, the token that lists it)
ROUTES = [
    ("/api/requests", "requester"),
    ("/api/requests", "release"),
    ("/api/requests?state=decided", "admin"),
    ("/api/queue", "release"),
    ("/api/queue", "appeal"),
    ("/api/deferrals", "release"),
    ("/api/deferrals?due=2099-01-01", "admin"),
    ("/api/admin/organisations", "admin"),
    ("/api/admin/reviewers", "admin"),
    ("/api/admin/tokens", "admin"),
    ("/api/admin/log", "admin"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Service, Tokens]]:
    tmp: Path = tmp_path_factory.mktemp("paging")
    with api(f"sqlite:///{tmp / 'cw.db'}", tmp) as (client, svc, tokens):
        for n in range(7):  # in the queue, received a minute apart and at the same time
            received = f"2026-11-21T10:0{n % 3}:00Z"
            svc.submit(reviewable(reference=f"Q{n}", received_at=received))
        today = svc.clock().date()
        for n in range(4):  # released with their notices deferred, two to a review date
            rid = svc.submit(reviewable(reference=f"D{n}", prejudice=True)).id
            until = (today + timedelta(days=10 + n % 2)).isoformat()
            svc.review(rid, "dpo-islington", True, defer_until=until)
        for n in range(3):  # refused by the policy, appealed by the requester
            svc.appeal(svc.submit(refused(reference=f"A{n}")).id, "requester", "wrong")
        for n in range(4):
            svc.add_reviewer(f"extra-{n}", f"Reviewer {n}", HOLDER, ["release_reviewer"])
            issue_token(svc, HOLDER, "release_reviewer", f"extra-{n}")
        yield client, svc, tokens


def _next(link: str | None) -> str | None:
    if link is None:
        return None
    found = re.fullmatch(r'<(/[^>]*)>; rel="next"', link)
    assert found is not None, link
    return found.group(1)


def _walk(client: TestClient, path: str, headers: dict[str, str], limit: int) -> list[Any]:
    url: str | None = f"{path}{'&' if '?' in path else '?'}limit={limit}"
    items: list[Any] = []
    pages = 0
    while url is not None:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page) <= limit
        url = _next(response.headers.get("link"))
        if url is not None:
            assert len(page) == limit  # only the last page is short
        items += page
        pages += 1
        assert pages < 1000
    return items


@pytest.mark.parametrize(("path", "who"), ROUTES)
def test_walking_the_pages_gives_the_whole_list_once(
    world: tuple[TestClient, Service, Tokens], path: str, who: str
) -> None:
    client, _, tokens = world
    whole = client.get(path, headers=tokens.auth(who))
    assert whole.status_code == 200 and "link" not in whole.headers
    everything = whole.json()
    assert len(everything) >= 3, everything
    for limit in (1, 2, 3):
        assert _walk(client, path, tokens.auth(who), limit) == everything


def test_the_default_page_is_100(world: tuple[TestClient, Service, Tokens]) -> None:
    client, svc, tokens = world
    for n in range(101 - len(svc.list_requests(requester="met-police"))):
        svc.submit(reviewable(reference=f"BULK{n}"))
    first = client.get("/api/requests", headers=tokens.auth("requester"))
    assert len(first.json()) == 100
    rest = client.get(_next(first.headers["link"]) or "", headers=tokens.auth("requester"))
    assert len(rest.json()) == len(svc.list_requests(requester="met-police")) - 100
    assert "link" not in rest.headers
    assert (
        len(client.get("/api/requests?limit=1000", headers=tokens.auth("requester")).json()) > 100
    )


def test_a_request_leaving_the_queue_neither_repeats_nor_skips_another(
    world: tuple[TestClient, Service, Tokens],
) -> None:
    client, svc, tokens = world
    headers = tokens.auth("release")
    before = [r["id"] for r in client.get("/api/queue?limit=1000", headers=headers).json()]
    first = client.get("/api/queue?limit=2", headers=headers)
    seen = [r["id"] for r in first.json()]
    svc.review(seen[0], "dpo-islington", False)  # reviewed: it leaves the queue
    rest = client.get(_next(first.headers["link"]) or "", headers=headers).json()
    assert seen + [r["id"] for r in rest] == before[:4]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=WzEsMiwzXQ", "cursor"),  # [1,2,3]: no list's shape
        ("cursor=WyJ4IiwieSIsInoiXQ", "cursor"),  # ["x","y","z"]
        ("cursor=W251bGwsbnVsbF0", "cursor"),  # [null,null]
        ("cursor=" + "A" * 2000, "cursor"),
        ("cursor=%00", "cursor"),
    ],
)
def test_a_bad_limit_or_cursor_is_refused_naming_it(
    world: tuple[TestClient, Service, Tokens], query: str, field: str
) -> None:
    client, _, tokens = world
    for path, who in ROUTES:
        sep = "&" if "?" in path else "?"
        response = client.get(f"{path}{sep}{query}", headers=tokens.auth(who))
        assert response.status_code == 422, (path, response.text)
        assert response.json()["field"] == field, (path, response.text)


def test_the_openapi_document_says_so(world: tuple[TestClient, Service, Tokens]) -> None:
    client, _, _ = world
    paths = client.get("/openapi.json").json()["paths"]
    for path, _ in ROUTES:
        get = paths[path.split("?")[0]]["get"]
        names = {p["name"] for p in get["parameters"]}
        assert {"limit", "cursor"} <= names, path
        limit = next(p for p in get["parameters"] if p["name"] == "limit")["schema"]
        assert (limit["default"], limit["maximum"]) == (100, 1000)
        assert "Link" in get["responses"]["200"]["headers"], path
