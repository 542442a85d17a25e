"""Malformed input, size limits, security headers, and no personal data in errors or logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import Tokens, api, reviewable
from fastapi.testclient import TestClient

from carewall.service import Service

SECRET_REF = "PERSONAL-9434765919"
SECRET_NAME = "Jane Q. Private"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Service, Tokens]]:
    tmp = tmp_path_factory.mktemp("errors")
    with api(f"sqlite:///{tmp / 'cw.db'}", tmp) as s:
        yield s


def doc_with(**changes: Any) -> dict[str, Any]:
    doc = reviewable(officer={"name": SECRET_NAME})
    doc["subjects"] = [{"ref": SECRET_REF, "is_child": False, "is_victim_or_witness": False}]
    doc.update(changes)
    return doc


BAD_DOCS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown purpose", doc_with(purpose="deportation"), "purpose"),
    ("missing holder", {k: v for k, v in doc_with().items() if k != "holder"}, "holder"),
    ("wrong type", doc_with(categories="name"), "categories"),
    ("no subjects", doc_with(subjects=[]), "subjects"),
    (
        "subject attribute type",
        doc_with(subjects=[{"ref": SECRET_REF, "is_child": "yes", "is_victim_or_witness": False}]),
        "subjects[0].is_child",
    ),
    ("unknown field", doc_with(nhs_number=SECRET_REF), "nhs_number"),
    ("unknown holder", doc_with(holder="no-such-org"), "holder"),
    ("bad date", doc_with(received_at="yesterday " + SECRET_NAME), "received_at"),
]


@pytest.mark.parametrize(("name", "doc", "field"), BAD_DOCS, ids=[b[0] for b in BAD_DOCS])
def test_bad_documents_name_the_field_and_echo_nothing(
    world: tuple[TestClient, Service, Tokens],
    caplog: pytest.LogCaptureFixture,
    name: str,
    doc: dict[str, Any],
    field: str,
) -> None:
    client, _, tok = world
    caplog.set_level(logging.DEBUG)
    r = client.post("/api/requests", json=doc, headers=tok.auth("requester"))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert SECRET_REF not in r.text and SECRET_NAME not in r.text
    assert SECRET_REF not in caplog.text and SECRET_NAME not in caplog.text


RAW_BODIES: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("not json", b"{not json"),
    ("array", b"[1, 2]"),
    ("string", b'"hello"'),
    ("bad utf-8", b'{"reference": "\xff\xfe"}'),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000),
    ("huge number", b'{"reference": 1' + b"0" * 5000 + b"}"),
    ("nan", b'{"reference": NaN}'),
    ("duplicate key", b'{"holder": "a", "holder": "b"}'),
    ("null", b"null"),
]


@pytest.mark.parametrize(("name", "body"), RAW_BODIES, ids=[b[0] for b in RAW_BODIES])
def test_malformed_bodies_never_500(
    world: tuple[TestClient, Service, Tokens], name: str, body: bytes
) -> None:
    client, _, tok = world
    headers = {**tok.auth("requester"), "Content-Type": "application/json"}
    r = client.post("/api/requests", content=body, headers=headers)
    assert r.status_code in (403, 413, 422), (name, r.status_code, r.text)
    assert r.json()["error"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/requests/{id}/review", b'{"release": "yes"}'),
        ("/api/requests/{id}/review", b"{}"),
        ("/api/requests/{id}/review", b'{"release": true, "reviewer": "x"}'),
        ("/api/requests/{id}/review", b"[]"),
    ],
)
def test_small_bodies_422_with_field(
    world: tuple[TestClient, Service, Tokens], path: str, body: bytes
) -> None:
    client, service, tok = world
    rid = service.submit(reviewable()).id
    headers = {**tok.auth("release"), "Content-Type": "application/json"}
    r = client.post(path.format(id=rid), content=body, headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["field"]
    assert service.get(rid).stage == "decided"


def test_bad_path_and_query_params(world: tuple[TestClient, Service, Tokens]) -> None:
    client, _, tok = world
    r = client.get("/api/requests/bad%20id!", headers=tok.auth("requester"))
    assert r.status_code == 422 and r.json()["field"] == "request_id"
    r = client.get("/api/requests?state=DROP%20TABLE", headers=tok.auth("requester"))
    assert r.status_code == 422 and r.json()["field"] == "state"
    r = client.get("/api/requests/r" + "0" * 20, headers=tok.auth("requester"))
    assert r.status_code == 404


def test_body_limit_413(tmp_path: Path) -> None:
    from carewall.api.app import create_app

    with api(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path) as (_, service, tok):
        client = TestClient(create_app(service, max_body=4096, max_request_body=8192))
        # A request document may be larger than other bodies, up to its own limit.
        medium = reviewable(necessity="x" * 5_000)
        r = client.post("/api/requests", json=medium, headers=tok.auth("requester"))
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        r = client.post(
            f"/api/requests/{rid}/review",
            json={"release": False, "note": "x" * 5_000},
            headers=tok.auth("release"),
        )
        assert r.status_code == 413 and r.json()["error"] == "too_large"
        big = reviewable(necessity="x" * 10_000)
        r = client.post("/api/requests", json=big, headers=tok.auth("requester"))
        assert r.status_code == 413 and r.json()["error"] == "too_large"
        assert r.headers["x-content-type-options"] == "nosniff"

        # A chunked body (no Content-Length) is counted as it arrives.
        def chunks() -> Iterator[bytes]:
            for _ in range(100):
                yield b" " * 1024

        r = client.post(
            "/api/requests",
            content=chunks(),
            headers={**tok.auth("requester"), "Content-Type": "application/json"},
        )
        assert r.status_code == 413
        assert [x.id for x in service.list_requests()] == [rid]
        assert service.get(rid).stage == "decided"  # the oversized review recorded nothing


def test_security_headers(world: tuple[TestClient, Service, Tokens]) -> None:
    client, _, tok = world
    for r in (
        client.get("/api/requests", headers=tok.auth("requester")),
        client.get("/api/requests"),
        client.get("/no/such/path"),
    ):
        h = r.headers
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"
        assert h["x-frame-options"] == "DENY"
        assert h["cache-control"] == "no-store"
        assert "strict-transport-security" not in h  # plain http on loopback
    https = TestClient(client.app, base_url="https://testserver")
    assert "max-age" in https.get("/api/requests").headers["strict-transport-security"]
    # The public log keeps its own caching; nothing personal is there.
    assert client.get("/log/checkpoint").headers["cache-control"] != "no-store"


def test_openapi_served(world: tuple[TestClient, Service, Tokens]) -> None:
    client, _, _ = world
    schema = client.get("/openapi.json").json()
    assert "/api/requests" in schema["paths"]
    assert "DisclosureRequest" in schema["components"]["schemas"]
    assert "/log/checkpoint" in schema["paths"]
