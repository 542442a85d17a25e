"""Administration is the holder's own (contract §2), over HTTP.

The admin token in these tests belongs to islington-council (organisation A); another
holder, whittington-health, is B. Each named attack must be refused with its status and an
error naming the field, and must change nothing: not the log, not B's tokens or reviewers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_support import HOLDER, Tokens, api, reviewable
from fastapi.testclient import TestClient

from carewall.api.admin import issue_token
from carewall.api.auth import list_tokens
from carewall.errors import AuthError, InputError
from carewall.ledger import verify_ledger
from carewall.service import Service

OTHER = "whittington-health"

World = tuple[TestClient, Service, Tokens, dict[str, str]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("admin-scope")
    with api(f"sqlite:///{tmp / 'cw.db'}", tmp) as (client, service, tok):
        ids = {
            "MINE": service.submit(reviewable()).id,
            "THEIRS": service.submit(reviewable(holder=OTHER)).id,
            "B_TOKEN": next(t.id for t in list_tokens(service.store, OTHER)),
        }
        yield client, service, tok, ids


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[TestClient, Service, Tokens]]:
    with api(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path) as s:
        yield s


def _entry(client: TestClient, index: int) -> dict[str, Any]:
    got: dict[str, Any] = client.get(f"/log/entries?start={index}&end={index + 1}").json()
    return dict(got["entries"][0])


# (name, method, path, body, status, field): every one sent with A's admin token.
ATTACKS: list[tuple[str, str, str, Any, int, str]] = [
    ("add-reviewer-at-B", "POST", "/api/admin/reviewers",
     {"id": "evil-wh", "name": "E. Vil", "organisation": OTHER, "roles": ["release_reviewer"]},
     403, "organisation"),
    ("reviewer-token-for-B", "POST", "/api/admin/tokens",
     {"organisation": OTHER, "role": "release_reviewer", "reviewer": "ig-whittington"},
     403, "organisation"),
    ("admin-token-for-B", "POST", "/api/admin/tokens",
     {"organisation": OTHER, "role": "admin"}, 403, "organisation"),
    ("requester-token-for-another-org", "POST", "/api/admin/tokens",
     {"organisation": "met-police", "role": "requester"}, 403, "organisation"),
    ("own-token-bound-to-B-reviewer", "POST", "/api/admin/tokens",
     {"role": "release_reviewer", "reviewer": "ig-whittington"}, 422, "reviewer"),
    ("admin-token-with-reviewer", "POST", "/api/admin/tokens",
     {"role": "admin", "reviewer": "dpo-islington"}, 422, "reviewer"),
    ("revoke-B-token", "DELETE", "/api/admin/tokens/{B_TOKEN}", None, 404, "id"),
    ("read-B-record", "GET", "/api/requests/{THEIRS}/record", None, 404, "id"),
    ("read-B-status", "GET", "/api/requests/{THEIRS}", None, 404, "id"),
    ("roles-of-B-reviewer", "PUT", "/api/admin/reviewers/ig-whittington/roles",
     {"roles": ["appeal_reviewer"]}, 403, "id"),
    ("retire-B-reviewer", "POST", "/api/admin/reviewers/ig-whittington/retire", None, 403, "id"),
    ("retire-unknown-reviewer", "POST", "/api/admin/reviewers/nobody-here/retire", None, 404,
     "id"),
    ("take-B-reviewer-id", "POST", "/api/admin/reviewers",
     {"id": "ig-whittington", "name": "I. G.", "roles": ["release_reviewer"]}, 409, "id"),
    ("add-organisation", "POST", "/api/admin/organisations",
     {"id": "camden-council", "name": "Camden Council", "function": "local_authority"},
     403, "organisation"),
    ("home-office-as-police", "POST", "/api/admin/organisations",
     {"id": "ho-liaison", "name": "Home Office", "function": "police"}, 403, "organisation"),
    ("retire-B", "POST", f"/api/admin/organisations/{OTHER}/retire", None, 403, "organisation"),
    ("retire-own-organisation", "POST", f"/api/admin/organisations/{HOLDER}/retire", None, 403,
     "organisation"),
    ("lookalike-org-in-token", "POST", "/api/admin/tokens",
     {"organisation": "islington-counciI", "role": "requester"}, 422, "organisation"),
    ("cyrillic-org-in-token", "POST", "/api/admin/tokens",
     {"organisation": "islington-cоuncil", "role": "requester"}, 422, "organisation"),
]  # fmt: skip

LOOKALIKE_IDS = [
    pytest.param("dpo2-islington\n", id="trailing-newline"),
    pytest.param("dpo2-islington ", id="trailing-space"),
    pytest.param("dpo2 islington", id="inner-space"),
    pytest.param("DPO2-islington", id="uppercase"),
    pytest.param("dpo2-islingtоn", id="cyrillic-o"),
    pytest.param("dpo2\u200d-islington", id="zero-width-joiner"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [pytest.param(m, p, b, s, f, id=n) for n, m, p, b, s, f in ATTACKS],
)
def test_admin_attack_is_refused(
    world: World, method: str, path: str, body: Any, status: int, field: str
) -> None:
    client, service, tok, ids = world
    size = service.ledger.size()
    b_tokens = list_tokens(service.store, OTHER)
    b_reviewers = {k: v for k, v in service.register().reviewers.items() if v.organisation == OTHER}
    r = client.request(method, path.format(**ids), json=body, headers=tok.auth("admin"))
    assert r.status_code == status, r.text
    err = r.json()
    assert err["field"] == field, err
    assert "Traceback" not in r.text
    if status == 403:
        assert err["error"] == "forbidden"
    # nothing changed: the log, B's tokens, B's reviewers
    assert service.ledger.size() == size
    assert list_tokens(service.store, OTHER) == b_tokens
    assert {
        k: v for k, v in service.register().reviewers.items() if v.organisation == OTHER
    } == b_reviewers
    assert client.get("/api/queue", headers=tok.auth("other_release")).status_code == 200


def test_adding_an_organisation_points_at_the_cli(world: World) -> None:
    client, _, tok, _ = world
    r = client.post("/api/admin/organisations", json={}, headers=tok.auth("admin"))
    assert r.status_code == 403 and "carewall register org add" in r.json()["fix"]
    r = client.post(f"/api/admin/organisations/{OTHER}/retire", headers=tok.auth("admin"))
    assert r.status_code == 403 and "carewall register org retire" in r.json()["fix"]


@pytest.mark.parametrize("bad", LOOKALIKE_IDS)
def test_lookalike_reviewer_ids_over_http(world: World, bad: str) -> None:
    client, service, tok, _ = world
    size = service.ledger.size()
    body = {"id": bad, "name": "Z. Q.", "roles": ["release_reviewer"]}
    r = client.post("/api/admin/reviewers", json=body, headers=tok.auth("admin"))
    assert (r.status_code, r.json()["field"]) == (422, "id"), r.text
    body = {"id": "dpo9-islington", "name": "Z. Q.", "organisation": bad.replace("dpo2", "x"),
            "roles": ["release_reviewer"]}  # fmt: skip
    r = client.post("/api/admin/reviewers", json=body, headers=tok.auth("admin"))
    assert (r.status_code, r.json()["field"]) == (422, "organisation"), r.text
    r = client.request(
        "PUT", "/api/admin/reviewers/x/roles", json={"roles": []}, headers=tok.auth("admin")
    )
    assert r.status_code in (404, 422)
    assert service.ledger.size() == size


def test_other_roles_cannot_administer(world: World) -> None:
    client, _, tok, _ = world
    for caller in ("requester", "release", "appeal", "other_release"):
        for method, path, body in [
            ("PUT", "/api/admin/reviewers/dpo-islington/roles", {"roles": ["appeal_reviewer"]}),
            ("POST", "/api/admin/reviewers/dpo-islington/retire", None),
            ("GET", "/api/admin/log", None),
        ]:
            r = client.request(method, path, json=body, headers=tok.auth(caller))
            assert r.status_code == 403, (caller, path)
    assert client.get("/api/admin/log").status_code == 401


def test_admin_sees_only_its_own_organisation(world: World) -> None:
    client, _service, tok, _ids = world
    admin = tok.auth("admin")
    tokens = client.get("/api/admin/tokens", headers=admin).json()
    assert tokens and {t["organisation"] for t in tokens} == {HOLDER}
    reviewers = client.get("/api/admin/reviewers", headers=admin).json()
    assert {r["organisation"] for r in reviewers} == {HOLDER}
    assert all("name" not in r for r in reviewers)
    log = client.get("/api/admin/log", headers=admin).json()
    assert log and {x["organisation"] for x in log} == {HOLDER}
    # the public register is public: every organisation, with its function
    orgs = {o["id"]: o["function"] for o in client.get("/api/admin/organisations", headers=admin)
            .json()}  # fmt: skip
    assert orgs[OTHER] == "health"


def test_admin_reads_a_redacted_record_of_its_own_holdings(world: World) -> None:
    client, _service, tok, ids = world
    full = client.get(f"/api/requests/{ids['MINE']}/record", headers=tok.auth("release")).json()
    seen = client.get(f"/api/requests/{ids['MINE']}/record", headers=tok.auth("admin"))
    assert seen.status_code == 200
    rec = seen.json()
    assert full["subjects"][0]["ref"] == "ISL-CRN-88213"
    assert [s["ref"] for s in rec["subjects"]] == ["[redacted]"]
    assert rec["officer"] is None and rec["authorised_by"] is None
    assert rec["necessity"] is None and rec["review_note"] is None
    assert "ISL-CRN-88213" not in seen.text and "Smith" not in seen.text
    assert "Khan" not in seen.text and "j.smith@police.example" not in seen.text
    # what the admin may see is kept: ids, codes, stages, the decision, the commitments
    for key in ("id", "holder", "requester", "purpose", "categories", "decision", "stage"):
        assert rec[key] == full[key]
    assert rec["subjects"][0]["commitment"] == full["subjects"][0]["commitment"]
    status = client.get(f"/api/requests/{ids['MINE']}", headers=tok.auth("admin"))
    assert status.status_code == 200


def test_appeal_grounds_are_redacted_for_the_admin(
    fresh: tuple[TestClient, Service, Tokens],
) -> None:
    client, _service, tok = fresh
    rid = client.post("/api/requests", json=reviewable(), headers=tok.auth("requester")).json()
    r = client.post(
        f"/api/requests/{rid['id']}/review",
        json={"release": False, "note": "Spoke to K. Doyle"},
        headers=tok.auth("release"),
    )
    assert r.status_code == 200, r.text
    grounds = "The subject, Mr Example, is wanted for questioning"
    r = client.post(
        f"/api/requests/{rid['id']}/appeal",
        json={"grounds": grounds},
        headers=tok.auth("requester"),
    )
    assert r.status_code == 200, r.text
    seen = client.get(f"/api/requests/{rid['id']}/record", headers=tok.auth("admin"))
    assert seen.status_code == 200
    assert seen.json()["appeal"]["grounds"] == "[redacted]"
    assert grounds not in seen.text and "K. Doyle" not in seen.text


def test_admin_manages_its_own_reviewers_and_every_change_is_logged(
    fresh: tuple[TestClient, Service, Tokens],
) -> None:
    client, service, tok = fresh
    admin = tok.auth("admin")
    admin_id = next(t.id for t in list_tokens(service.store, HOLDER) if t.role == "admin")
    body = {"id": "dpo2-islington", "name": "Z. Quinn", "roles": ["release_reviewer",
            "appeal_reviewer"]}  # fmt: skip
    r = client.post("/api/admin/reviewers", json=body, headers=admin)
    assert r.status_code == 201, r.text
    (added,) = r.json()["logged"]
    entry = _entry(client, added["log_index"])
    assert entry == {
        **entry,
        "kind": "reviewer",
        "id": "dpo2-islington",
        "organisation": HOLDER,
        "roles": ["appeal_reviewer", "release_reviewer"],
        "change": "add",
    }
    assert "Z. Quinn" not in json.dumps(entry)

    def mint(role: str) -> dict[str, str]:
        r = client.post(
            "/api/admin/tokens", json={"role": role, "reviewer": "dpo2-islington"}, headers=admin
        )
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['secret']}"}

    release, appeal = mint("release_reviewer"), mint("appeal_reviewer")
    # dropping a role logs an update and revokes the tokens for that role
    r = client.put(
        "/api/admin/reviewers/dpo2-islington/roles",
        json={"roles": ["release_reviewer"]},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    (updated,) = r.json()["logged"]
    entry = _entry(client, updated["log_index"])
    assert (entry["change"], entry["roles"]) == ("update", ["release_reviewer"])
    assert client.get("/api/queue", headers=appeal).status_code == 401
    assert client.get("/api/queue", headers=release).status_code == 200
    # a retired reviewer cannot review: its tokens stop at once, and the service refuses it
    sub = service.submit(reviewable())
    r = client.post("/api/admin/reviewers/dpo2-islington/retire", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["retired_at"] is not None
    (retired,) = r.json()["logged"]
    assert _entry(client, retired["log_index"])["change"] == "retire"
    assert client.get("/api/queue", headers=release).status_code == 401
    with pytest.raises(AuthError) as e:
        service.review(sub.id, "dpo2-islington", release=True)
    assert e.value.field == "reviewer"
    r = client.post("/api/admin/reviewers/dpo2-islington/retire", headers=admin)
    assert (r.status_code, r.json()["field"]) == (409, "id")
    r = client.post("/api/admin/reviewers", json=body, headers=admin)
    assert (r.status_code, r.json()["field"]) == (409, "id")  # ids are never reused
    # the admin record names the admin token as the actor, by id, never a secret or a name
    log = client.get("/api/admin/log", headers=admin).json()
    assert [x["action"] for x in log] == [
        *["token_create"] * 3,  # the operator's: release, appeal and this admin token
        "reviewer_add",
        "token_create",
        "token_create",
        "reviewer_update",
        "token_revoke",
        "reviewer_retire",
        "token_revoke",
    ]
    assert {x["actor"] for x in log[:3]} == {"cli"}
    assert {x["actor"] for x in log[3:]} == {admin_id}
    with service.store.read() as conn:
        rows = conn.execute(sa.text("SELECT * FROM svc_admin_log")).all()
    flat = " ".join(str(v) for row in rows for v in row)
    assert "cw_" not in flat and "Z. Quinn" not in flat
    assert verify_ledger(service.store).ok


def test_admin_revokes_only_its_own_tokens(fresh: tuple[TestClient, Service, Tokens]) -> None:
    client, service, tok = fresh
    admin = tok.auth("admin")
    mine = next(t.id for t in list_tokens(service.store, HOLDER) if t.role == "release_reviewer")
    assert client.delete(f"/api/admin/tokens/{mine}", headers=admin).status_code == 204
    assert client.get("/api/queue", headers=tok.auth("release")).status_code == 401
    r = client.delete(f"/api/admin/tokens/{mine}", headers=admin)
    assert (r.status_code, r.json()["field"]) == (404, "id")


def test_no_admin_or_reviewer_token_for_an_immigration_body(
    fresh: tuple[TestClient, Service, Tokens],
) -> None:
    _, service, _ = fresh
    for role, reviewer in (("admin", None), ("release_reviewer", "x"), ("appeal_reviewer", "x")):
        with pytest.raises(InputError) as e:
            issue_token(service, "home-office-ie", role, reviewer)
        assert e.value.field == "role"
    # its requests still reach carewall, to be refused by the pledge and logged
    assert issue_token(service, "home-office-ie", "requester").info.role == "requester"


def test_retired_organisations_lose_their_tokens(
    fresh: tuple[TestClient, Service, Tokens],
) -> None:
    client, service, tok = fresh
    assert client.get("/api/requests", headers=tok.auth("other_requester")).status_code == 200
    change = service.retire_organisation("dwp")
    assert [x.kind for x in change.logged] == ["reviewer", "organisation"]
    assert client.get("/api/requests", headers=tok.auth("other_requester")).status_code == 401
    with pytest.raises(InputError) as e:
        issue_token(service, "dwp", "requester")
    assert e.value.field == "organisation" and "retired" in e.value.message
    # a request naming it, as requester or holder, is refused with the field named
    for field, doc in (("requester", reviewable(requester="dwp")),
                       ("holder", reviewable(holder="dwp"))):  # fmt: skip
        with pytest.raises(InputError) as e:
            service.submit(doc)
        assert e.value.field == field
