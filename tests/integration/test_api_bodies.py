"""Every JSON body the API reads, read one strict way (api/bodies.py), and the paths it answers.

A key given twice, bytes that are not UTF-8, nesting or numbers past what can be read: each
is a 422 in the one error shape that names the key or ``body`` and says what to send, on
every route, never a bare 400 or a silent "last key wins". A reported field is cut to 40
characters a part. A path spelled with a trailing slash is a 404, never a redirect.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_support import Tokens, api, refused, reviewable
from fastapi.testclient import TestClient
from httpx import Response

from carewall.api.middleware import BodyTimeoutMiddleware
from carewall.service import Service

JSON = {"content-type": "application/json"}


@dataclass
class World:
    client: TestClient
    svc: Service
    tokens: Tokens

    def post(self, path: str, body: bytes, token: str | None = None, **headers: str) -> Response:
        sent = {**JSON, **headers}
        if token is not None:
            sent.update(self.tokens.auth(token))
        r: Response = self.client.post(path, content=body, headers=sent)
        return r

    def waiting(self, **changes: Any) -> str:
        got = self.svc.submit(reviewable(**changes))
        assert got.outcome == "review"
        return got.id


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with api(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path) as (client, svc, tokens):
        yield World(client, svc, tokens)


def error_of(r: Response, status: int = 422) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert set(body) <= {"error", "message", "field", "fix", "fields"}, body
    assert body["error"] and body["message"], body
    return body


# ----- a key given twice ---------------------------------------------------------------


def test_a_duplicate_key_in_a_decision_names_the_key_and_releases_nothing(world: World) -> None:
    rid = world.waiting()
    for body in (b'{"release": false, "release": true}', b'{"release": true, "release": true}'):
        got = error_of(world.post(f"/api/requests/{rid}/review", body, "release"))
        assert got["error"] == "invalid_input"
        assert got["field"] == "release" and got["fix"], got
    assert world.svc.summary(rid).outcome == "review"


def test_a_duplicate_key_inside_a_nested_object_is_refused(world: World) -> None:
    rid = world.waiting()
    body = b'{"release": true, "facts": [{"subject": 0, "adult": true, "adult": false}]}'
    got = error_of(world.post(f"/api/requests/{rid}/review", body, "release"))
    assert got["field"] == "adult"
    assert world.svc.summary(rid).outcome == "review"


@pytest.mark.parametrize(
    ("path", "token", "body", "key"),
    [
        ("/api/requests/{id}/appeal", "requester", b'{"grounds": "a", "grounds": "b"}', "grounds"),
        ("/api/requests/{id}/deferral", "release", b'{"action": "lift", "action": "x"}', "action"),
        ("/api/requests/{id}/appeal/decision", "appeal", b'{"uphold": 1, "uphold": 2}', "uphold"),
        ("/api/subject/view", None, b'{"request": "{id}", "request": "", "code": "x"}', "request"),
    ],
)
def test_every_route_refuses_a_duplicate_key(
    world: World, path: str, token: str | None, body: bytes, key: str
) -> None:
    rid = world.svc.submit(refused()).id
    sent = body.replace(b"{id}", rid.encode())
    got = error_of(world.post(path.format(id=rid), sent, token))
    assert got["field"] == key and got["fix"], got
    assert world.svc.get(rid).stage == "decided"


def test_a_long_duplicate_key_is_named_cut_short(world: World) -> None:
    rid = world.waiting()
    key = "k" * 100_000
    body = json.dumps({"release": True})[:-1] + f', "{key}": 1, "{key}": 2}}'
    got = error_of(world.post(f"/api/requests/{rid}/review", body.encode(), "release"))
    assert got["field"] == "k" * 40
    assert len(world.post(f"/api/requests/{rid}/review", body.encode(), "release").text) < 500


def test_the_request_document_keeps_its_own_reader(world: World) -> None:
    """POST /api/requests reads its document itself: its errors name the document."""
    doc = json.dumps(reviewable())[:-1] + ', "holder": "whittington-health"}'
    got = error_of(world.post("/api/requests", doc.encode(), "requester"))
    assert got["field"] == "request" and "twice" in got["message"]
    got = error_of(world.post("/api/requests", b'{"a": "\xff"}', "requester"))
    assert got["field"] == "request"
    assert world.svc.list_requests() == []


# ----- bodies that cannot be read ------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"release": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"release": 1' + b"0" * 5_000 + b"}",
        b'{"note": "\xff\xfe", "release": true}',
        b"\xef\xbb\xbf" + b'{"release": true}',  # a byte-order mark is not JSON
        '{"release": true}'.encode("utf-16"),
        b'{"release": true',
        b'{"release": true} {"release": false}',
    ],
    ids=["deep", "huge-int", "bad-utf8", "bom", "utf-16", "truncated", "two-values"],
)
def test_an_unreadable_body_names_the_body_and_the_fix(world: World, body: bytes) -> None:
    rid = world.waiting()
    got = error_of(world.post(f"/api/requests/{rid}/review", body, "release"))
    assert got == {
        "error": "invalid_input",
        "message": got["message"],
        "field": "body",
        "fix": got["fix"],
    }
    assert "UTF-8 JSON object" in got["fix"]
    assert "\ufffd" not in got["message"] and "release" not in got["message"]
    assert world.svc.summary(rid).outcome == "review"


def test_a_json_subtype_is_read_the_same_way(world: World) -> None:
    rid = world.waiting()
    r = world.post(
        f"/api/requests/{rid}/review",
        b'{"release": false, "release": true}',
        "release",
        **{"content-type": "application/merge-patch+json; charset=utf-8"},
    )
    assert error_of(r)["field"] == "release"
    assert world.svc.summary(rid).outcome == "review"


def test_a_well_formed_body_still_reaches_the_route(world: World) -> None:
    rid = world.waiting()
    r = world.post(f"/api/requests/{rid}/review", b'{"release": false}', "release")
    assert r.status_code == 200, r.text
    assert world.svc.summary(rid).outcome == "refused"


def test_an_over_large_json_body_is_still_a_413(world: World) -> None:
    rid = world.waiting()
    big = b'{"release": false, "note": "' + b"a" * (2 << 20) + b'"}'
    error_of(world.post(f"/api/requests/{rid}/review", big, "release"), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield big[: 1 << 20]
        yield big[1 << 20 :]

    r = world.client.post(
        f"/api/requests/{rid}/review",
        content=chunks(),
        headers={**JSON, **world.tokens.auth("release")},
    )
    assert error_of(r, 413)["error"] == "too_large"
    assert world.svc.summary(rid).outcome == "review"


# ----- which field is blamed -------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"[]", b'["x"]', b"null", b'"text"', b"1"])
def test_a_body_that_is_not_an_object_blames_the_body(world: World, body: bytes) -> None:
    got = error_of(world.post("/api/subject/view", body))
    assert got["field"] == "body", got


def test_an_unknown_key_is_named_cut_to_40_characters(world: World) -> None:
    rid = world.waiting()
    key = "x" * 100_000
    r = world.client.post(
        f"/api/requests/{rid}/review",
        json={"release": True, key: 1},
        headers=world.tokens.auth("release"),
    )
    got = error_of(r)
    assert got["field"] == "x" * 40
    r = world.client.post(
        f"/api/requests/{rid}/review",
        json={"release": True, "facts": [{"subject": 0, key: 1}]},
        headers=world.tokens.auth("release"),
    )
    assert error_of(r)["field"] == "facts[0]." + "x" * 40
    assert world.svc.summary(rid).outcome == "review"


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({**reviewable(), "y" * 100_000: 1}, "y" * 40),
        (
            {**reviewable(), "officer": {"name": "DC Smith", "y" * 100_000: 1}},
            "officer." + "y" * 40,
        ),
        # dots in a key: one key, cut to 40 characters where the path is built
        ({**reviewable(), "y." * 50_000: 1}, "y." * 20),
    ],
    ids=["top", "nested", "dotted"],
)
def test_an_unknown_key_in_the_request_document_is_cut_short(
    world: World, doc: dict[str, Any], field: str
) -> None:
    r = world.client.post("/api/requests", json=doc, headers=world.tokens.auth("requester"))
    got = error_of(r)
    assert got["field"] == field and got["fix"]
    assert len(r.text) < 500
    assert world.svc.list_requests() == []


# ----- paths are spelled one way -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/requests/{id}/"),
        ("GET", "/api/requests/"),
        ("POST", "/api/requests/{id}/review/"),
        ("GET", "/log/checkpoint/"),
        ("GET", "/statistics.json/"),
    ],
)
def test_a_trailing_slash_is_a_404_not_a_redirect(world: World, method: str, path: str) -> None:
    rid = world.waiting()
    r = world.client.request(
        method,
        path.format(id=rid),
        headers={**world.tokens.auth("release"), "host": "evil.example"},
        follow_redirects=False,
    )
    assert "location" not in r.headers
    assert error_of(r, 404)["error"] == "not_found"
    assert rid not in r.text


def test_a_page_with_a_trailing_slash_is_the_html_404_page(world: World) -> None:
    r = world.client.get(
        "/review/", headers={"accept": "text/html", "host": "evil.example"}, follow_redirects=False
    )
    assert r.status_code == 404 and "location" not in r.headers
    assert r.headers["content-type"].startswith("text/html")
    assert "evil.example" not in r.text


@pytest.mark.parametrize("path", ["/", "/log/", "/review", "/my-data", "/statistics", "/sign-in"])
def test_the_pages_answer_at_their_own_paths(world: World, path: str) -> None:
    r = world.client.get(path, headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code in (200, 303, 401), (path, r.status_code)  # 401: sign in first


# ----- a body that stalls or whose client goes away, on a route this reader reads ---------


async def _call(app: Any, path: str, token: str, receive: Any) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"carewall"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("carewall", 80),
    }

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_a_client_gone_mid_body_is_one_log_line_not_an_error(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    rid = world.waiting()
    messages = [
        {"type": "http.request", "body": b'{"release": tr', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    caplog.set_level(logging.INFO, logger="carewall")
    app = world.client.app
    asyncio.run(_call(app, f"/api/requests/{rid}/review", world.tokens.release, receive))
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("carewall")]
    assert lines == [
        "client disconnected before its request was read: POST /api/requests/{request_id}/review"
    ]
    assert world.svc.summary(rid).outcome == "review"


def test_a_stalled_body_is_still_a_408(world: World) -> None:
    rid = world.waiting()
    stalled = asyncio.Event()  # never set: the rest of the body never comes
    first = [{"type": "http.request", "body": b'{"release": tr', "more_body": True}]

    async def receive() -> dict[str, Any]:
        if first:
            return first.pop()
        await stalled.wait()
        raise AssertionError("unreachable")

    app = BodyTimeoutMiddleware(world.client.app, 0.05)
    status, body = asyncio.run(
        _call(app, f"/api/requests/{rid}/review", world.tokens.release, receive)
    )
    assert status == 408 and json.loads(body)["error"] == "timeout"
    assert world.svc.summary(rid).outcome == "review"
