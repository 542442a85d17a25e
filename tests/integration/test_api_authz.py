"""Authorisation matrix: each kind of caller against each endpoint (SQLite, in-process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import Tokens, api, reviewable
from fastapi.testclient import TestClient

from carewall.service import Service

CALLERS = (
    "none",
    "bad",
    "requester",
    "other_requester",
    "release",
    "appeal",
    "other_release",
    "admin",
)

# Requests: LIVE awaits review; GONE was withdrawn (so allowed callers get 409, and
# nothing in the matrix changes state). 4xx codes per caller, in CALLERS order.
MATRIX: list[tuple[str, str, Any, tuple[int, ...]]] = [
    ("GET", "/api/requests", None, (401, 401, 200, 200, 200, 200, 200, 200)),
    ("GET", "/api/requests/{LIVE}", None, (401, 401, 200, 404, 200, 200, 404, 200)),
    ("GET", "/api/requests/{LIVE}/record", None, (401, 401, 403, 403, 200, 200, 404, 200)),
    (
        "POST",
        "/api/requests/{LIVE}/appeal",
        {"grounds": "x"},
        (401, 401, 409, 404, 403, 403, 403, 403),
    ),
    ("POST", "/api/requests/{GONE}/withdraw", None, (401, 401, 409, 404, 403, 403, 403, 403)),
    (
        "POST",
        "/api/requests/{GONE}/review",
        {"release": True},
        (401, 401, 403, 403, 409, 403, 404, 403),
    ),
    # A reviewer at another organisation cannot release this holder's data.
    (
        "POST",
        "/api/requests/{LIVE}/review",
        {"release": True, "__only": "other_release"},
        (401, 401, 403, 403, -1, 403, 404, 403),
    ),
    (
        "POST",
        "/api/requests/{LIVE}/appeal/decision",
        {"uphold": True},
        (401, 401, 403, 403, 403, 409, 403, 403),
    ),
    ("GET", "/api/queue", None, (401, 401, 403, 403, 200, 200, 200, 403)),
    ("GET", "/api/admin/organisations", None, (401, 401, 403, 403, 403, 403, 403, 200)),
    ("GET", "/api/admin/reviewers", None, (401, 401, 403, 403, 403, 403, 403, 200)),
    ("GET", "/api/admin/tokens", None, (401, 401, 403, 403, 403, 403, 403, 200)),
    ("POST", "/api/admin/tokens", {}, (401, 401, 403, 403, 403, 403, 403, 422)),
    # Organisations are registered by the operator with the CLI, never over HTTP.
    ("POST", "/api/admin/organisations", {}, (401, 401, 403, 403, 403, 403, 403, 403)),
    (
        "POST",
        "/api/admin/organisations/met-police/retire",
        None,
        (401, 401, 403, 403, 403, 403, 403, 403),
    ),
    ("POST", "/api/admin/reviewers", {}, (401, 401, 403, 403, 403, 403, 403, 422)),
    ("GET", "/api/admin/policy", None, (401, 401, 403, 403, 403, 403, 403, 200)),
    ("PUT", "/api/admin/policy", {}, (401, 401, 403, 403, 403, 403, 403, 422)),
    (
        "DELETE",
        "/api/admin/tokens/0000000000000000",
        None,
        (401, 401, 403, 403, 403, 403, 403, 404),
    ),
    # No token opens a subject's view; after 5 wrong codes for one request id it is 429.
    ("POST", "/api/subject/view", {"request": "{LIVE}", "code": "wrong"}, (401,) * 5 + (429,) * 3),
    ("GET", "/log/checkpoint", None, (200,) * 8),
]


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, Service, Tokens, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("authz")
    with api(f"sqlite:///{tmp / 'cw.db'}", tmp) as (client, service, tok):
        live = service.submit(reviewable()).id
        gone = service.submit(reviewable()).id
        service.withdraw(gone, "met-police")
        yield client, service, tok, {"LIVE": live, "GONE": gone}


def _headers(tok: Tokens, caller: str) -> dict[str, str]:
    if caller == "none":
        return {}
    if caller == "bad":
        return {"Authorization": "Bearer cw_not-a-real-token"}
    return tok.auth(caller)


@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX)
def test_matrix(
    world: tuple[TestClient, Service, Tokens, dict[str, str]],
    method: str,
    path: str,
    body: Any,
    expected: tuple[int, ...],
) -> None:
    client, service, tok, ids = world
    url = path.format(**ids)
    if isinstance(body, dict):
        body = {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}
        body.pop("__only", None)
    before = service.get(ids["LIVE"]).model_dump()
    got = {}
    for caller, want in zip(CALLERS, expected, strict=True):
        if want == -1:
            continue
        r = client.request(method, url, json=body, headers=_headers(tok, caller))
        got[caller] = r.status_code
        if r.status_code >= 400:
            err = r.json()
            assert {"error", "message"} <= err.keys()
    assert got == {c: w for c, w in zip(CALLERS, expected, strict=True) if w != -1}
    # No refused call changed the live request.
    assert service.get(ids["LIVE"]).model_dump() == before


def test_requesters_see_only_their_own(
    world: tuple[TestClient, Service, Tokens, dict[str, str]],
) -> None:
    client, _, tok, ids = world
    mine = {r["id"] for r in client.get("/api/requests", headers=tok.auth("requester")).json()}
    theirs = client.get("/api/requests", headers=tok.auth("other_requester")).json()
    assert ids["LIVE"] in mine and theirs == []
    queue = client.get("/api/queue", headers=tok.auth("other_release")).json()
    assert queue == []


def test_submit_only_as_own_organisation(
    world: tuple[TestClient, Service, Tokens, dict[str, str]],
) -> None:
    client, _, tok, _ = world
    # DWP's token cannot submit in the Met's name, nor can a holder-side token.
    for caller in ("other_requester", "release", "admin"):
        r = client.post("/api/requests", json=reviewable(), headers=tok.auth(caller))
        assert r.status_code == 403, caller
    r = client.post("/api/requests", json=reviewable(), headers={})
    assert r.status_code == 401
    r = client.post(
        "/api/requests", json=reviewable(), headers={"Authorization": f"Basic {tok.requester}"}
    )
    assert r.status_code == 401


def test_tokens_stored_hashed(world: tuple[TestClient, Service, Tokens, dict[str, str]]) -> None:
    _, service, tok, _ = world
    import sqlalchemy as sa

    with service.store.read() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text("SELECT * FROM api_tokens")).all()]
    flat = " ".join(str(v) for row in rows for v in row)
    assert rows and tok.requester not in flat and tok.admin not in flat


def test_token_cli(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from carewall.cli import main

    db = f"sqlite:///{tmp_path / 'cw.db'}"
    key = str(tmp_path / "log.key")
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--db", db, "--key", key]).exit_code == 0
    r = runner.invoke(
        main, ["token", "create", "--org", "met-police", "--role", "requester", "--db", db]
    )
    assert r.exit_code == 0, r.output
    issued = json.loads(r.output)
    assert issued["secret"].startswith("cw_")
    listed = runner.invoke(main, ["token", "list", "--db", db])
    assert issued["id"] in listed.output and issued["secret"] not in listed.output
    # A reviewer token must name a reviewer who holds the role at that organisation.
    r = runner.invoke(
        main,
        ["token", "create", "--org", "islington-council", "--role", "release_reviewer", "--db", db],
    )
    assert r.exit_code == 2 and "reviewer" in r.output
    r = runner.invoke(
        main,
        ["token", "create", "--org", "met-police", "--role", "release_reviewer",
         "--reviewer", "dpo-islington", "--db", db],
    )  # fmt: skip
    assert r.exit_code == 2
    assert runner.invoke(main, ["token", "revoke", issued["id"], "--db", db]).exit_code == 0
    assert runner.invoke(main, ["token", "revoke", issued["id"], "--db", db]).exit_code == 2
    service = Service.open(db, key)
    try:
        from carewall.api.auth import authenticate

        assert authenticate(service.store, issued["secret"]) is None
    finally:
        service.close()
