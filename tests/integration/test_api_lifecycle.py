"""The whole request lifecycle through the HTTP API, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json

from api_support import (
    REQUESTER,
    Tokens,
    access_code,
    assert_consistent,
    example,
    refused,
    reviewable,
)
from fastapi.testclient import TestClient

from carewall.service import Service


def log_kinds(client: TestClient) -> list[str]:
    size = int(client.get("/log/checkpoint").text.splitlines()[1])
    entries = client.get(f"/log/entries?start=0&end={size}").json()["entries"]
    return [e["kind"] for e in entries]


def test_release_then_subject_appeal(served: tuple[TestClient, Service, Tokens]) -> None:
    client, service, tok = served
    r = client.post("/api/requests", json=reviewable(), headers=tok.auth("requester"))
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["outcome"] == "review"
    rid = sub["id"]

    status = client.get(f"/api/requests/{rid}", headers=tok.auth("requester")).json()
    assert (status["stage"], status["outcome"]) == ("decided", "review")
    assert "subjects" not in status  # the requester's view carries no DPO-only detail

    queue = client.get("/api/queue", headers=tok.auth("release")).json()
    assert [q["id"] for q in queue] == [rid]

    r = client.post(
        f"/api/requests/{rid}/review",
        json={"release": True, "note": "proportionate"},
        headers=tok.auth("release"),
    )
    assert r.status_code == 200, r.text
    record = r.json()
    assert record["outcome"] == "released"
    assert record["reviewer"] == "dpo-islington"  # from the token, never the body
    assert set(record["release"]["categories"]) == {"name", "address"}
    assert client.get("/api/queue", headers=tok.auth("release")).json() == []

    status = client.get(f"/api/requests/{rid}", headers=tok.auth("requester")).json()
    assert set(status["released_categories"]) == {"name", "address"}

    code = access_code(service, rid)
    r = client.post("/api/subject/view", json={"request": rid, "code": code})
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["can_appeal"] is True
    assert set(view["categories"]) == {"name", "address"}
    assert view["release_index"] is not None and view["inclusion_proof"]
    bad = client.post("/api/subject/view", json={"request": rid, "code": code + "x"})
    assert bad.status_code == 401

    r = client.post(
        "/api/subject/appeal", json={"request": rid, "code": code, "grounds": "I object"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == "appealed"
    appeals = client.get("/api/queue", headers=tok.auth("appeal")).json()
    assert [a["id"] for a in appeals] == [rid]

    r = client.post(
        f"/api/requests/{rid}/appeal/decision", json={"uphold": True}, headers=tok.auth("appeal")
    )
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == "upheld"

    kinds = log_kinds(client)
    for kind in ("policy", "request", "decision", "review", "release", "notice", "appeal"):
        assert kind in kinds
    assert assert_consistent(service) >= 6


def test_refusal_appeal_overturned_and_withdrawal(
    served: tuple[TestClient, Service, Tokens],
) -> None:
    client, service, tok = served
    r = client.post("/api/requests", json=refused(), headers=tok.auth("requester"))
    assert r.status_code == 201, r.text
    assert r.json()["outcome"] == "refused"
    rid = r.json()["id"]
    assert client.get("/api/queue", headers=tok.auth("release")).json() == []

    # A refusal cannot be reviewed into a release.
    r = client.post(
        f"/api/requests/{rid}/review", json={"release": True}, headers=tok.auth("release")
    )
    assert r.status_code == 409

    r = client.post(
        f"/api/requests/{rid}/appeal",
        json={"grounds": "we disagree"},
        headers=tok.auth("requester"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == "appealed"
    r = client.post(
        f"/api/requests/{rid}/appeal/decision", json={"uphold": True}, headers=tok.auth("appeal")
    )
    assert r.json()["outcome"] == "refused" and r.json()["stage"] == "upheld"

    # Withdraw another before review; then it can no longer be reviewed.
    rid2 = client.post("/api/requests", json=reviewable(), headers=tok.auth("requester")).json()[
        "id"
    ]
    r = client.post(f"/api/requests/{rid2}/withdraw", headers=tok.auth("requester"))
    assert r.status_code == 200 and r.json()["stage"] == "withdrawn"
    r = client.post(
        f"/api/requests/{rid2}/review", json={"release": True}, headers=tok.auth("release")
    )
    assert r.status_code == 409

    listed = client.get("/api/requests", headers=tok.auth("requester")).json()
    assert {x["id"] for x in listed} == {rid, rid2}
    only = client.get("/api/requests?state=withdrawn", headers=tok.auth("requester")).json()
    assert [x["id"] for x in only] == [rid2]
    assert only[0]["outcome"] == "withdrawn"
    assert_consistent(service)


def test_withdrawal_is_logged_and_shown(served: tuple[TestClient, Service, Tokens]) -> None:
    client, service, tok = served
    rid = client.post("/api/requests", json=reviewable(), headers=tok.auth("requester")).json()[
        "id"
    ]
    size = service.ledger.size()
    # only the requester withdraws: a holder-side token may not; another requester does not
    # even see the request (404, as for a missing one: ids reveal nothing)
    for who in ("release", "appeal", "admin"):
        r = client.post(f"/api/requests/{rid}/withdraw", headers=tok.auth(who))
        assert r.status_code == 403, (who, r.text)
    r = client.post(f"/api/requests/{rid}/withdraw", headers=tok.auth("other_requester"))
    assert r.status_code == 404
    assert service.ledger.size() == size

    r = client.post(f"/api/requests/{rid}/withdraw", headers=tok.auth("requester"))
    assert r.status_code == 200, r.text
    assert (r.json()["stage"], r.json()["outcome"]) == ("withdrawn", "withdrawn")
    assert r.json()["withdrawn_at"]
    entries = [json.loads(e) for e in service.ledger.entries(size, service.ledger.size())]
    assert entries == [
        {"v": 1, "kind": "withdrawal", "time": entries[0]["time"], "request": rid, "by": REQUESTER}
    ]
    status = client.get(f"/api/requests/{rid}", headers=tok.auth("requester")).json()
    assert status["outcome"] == "withdrawn"
    record = client.get(f"/api/requests/{rid}/record", headers=tok.auth("release")).json()
    assert (record["outcome"], record["withdrawn_by"]) == ("withdrawn", REQUESTER)
    assert [e["kind"] for e in record["events"]][-1] == "withdrawn"
    listed = client.get("/api/requests", headers=tok.auth("release")).json()
    assert [(x["id"], x["outcome"]) for x in listed] == [(rid, "withdrawn")]
    assert client.get("/api/queue", headers=tok.auth("release")).json() == []

    # withdrawing twice, or after review, is a conflict and logs nothing
    assert (
        client.post(f"/api/requests/{rid}/withdraw", headers=tok.auth("requester")).status_code
        == 409
    )
    rid2 = client.post("/api/requests", json=reviewable(), headers=tok.auth("requester")).json()[
        "id"
    ]
    assert (
        client.post(
            f"/api/requests/{rid2}/review", json={"release": False}, headers=tok.auth("release")
        ).status_code
        == 200
    )
    size = service.ledger.size()
    r = client.post(f"/api/requests/{rid2}/withdraw", headers=tok.auth("requester"))
    assert r.status_code == 409 and "withdraw" in r.json()["message"]
    assert service.ledger.size() == size
    assert_consistent(service)


def test_refused_review_and_dpo_record(served: tuple[TestClient, Service, Tokens]) -> None:
    client, service, tok = served
    rid = client.post("/api/requests", json=reviewable(), headers=tok.auth("requester")).json()[
        "id"
    ]
    r = client.post(
        f"/api/requests/{rid}/review", json={"release": False}, headers=tok.auth("release")
    )
    assert r.status_code == 200 and r.json()["outcome"] == "refused"
    rec = client.get(f"/api/requests/{rid}/record", headers=tok.auth("release")).json()
    assert rec["subjects"][0]["ref"] == example()["subjects"][0]["ref"]
    assert [e["kind"] for e in rec["events"]][:2] == ["received", "decided"]
    # The holder's admin sees the record without subject references or officers' details.
    seen = client.get(f"/api/requests/{rid}/record", headers=tok.auth("admin")).json()
    assert seen["subjects"][0]["ref"] == "[redacted]" and seen["officer"] is None
    assert seen["events"] == rec["events"]
    assert_consistent(service)


def test_admin_register_tokens_and_policy(served: tuple[TestClient, Service, Tokens]) -> None:
    client, service, tok = served
    admin = tok.auth("admin")  # the admin of islington-council
    # Organisations are the operator's (carewall register org add), never an admin token's.
    r = client.post(
        "/api/admin/organisations",
        json={"id": "camden-council", "name": "Camden Council", "function": "local_authority"},
        headers=admin,
    )
    assert r.status_code == 403 and "carewall register org add" in r.json()["fix"]
    r = client.post(
        "/api/admin/reviewers",
        json={"id": "dpo2-islington", "name": "Z. Q.", "roles": ["release_reviewer"]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    added = r.json()
    assert added["organisation"] == "islington-council"
    (logged,) = added["logged"]
    entry = client.get(
        f"/log/entries?start={logged['log_index']}&end={logged['log_index'] + 1}"
    ).json()["entries"][0]
    assert (entry["kind"], entry["id"], entry["change"]) == ("reviewer", "dpo2-islington", "add")
    assert "name" not in entry
    r = client.post(
        "/api/admin/tokens",
        json={"role": "release_reviewer", "reviewer": "dpo2-islington"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    issued = r.json()
    assert issued["organisation"] == "islington-council"
    mine = {"Authorization": f"Bearer {issued['secret']}"}
    assert client.get("/api/queue", headers=mine).status_code == 200
    listed = client.get("/api/admin/tokens", headers=admin).json()
    assert issued["id"] in {t["id"] for t in listed}
    assert all("secret" not in t for t in listed)
    assert {t["organisation"] for t in listed} == {"islington-council"}
    assert client.delete(f"/api/admin/tokens/{issued['id']}", headers=admin).status_code == 204
    assert client.get("/api/queue", headers=mine).status_code == 401
    actions = [(x.action, x.detail.get("token")) for x in service.admin_log()]
    assert ("token_create", issued["id"]) in actions and ("token_revoke", issued["id"]) in actions

    # A reviewer token for a role the reviewer lacks is refused, naming the field.
    r = client.post(
        "/api/admin/tokens",
        json={"role": "appeal_reviewer", "reviewer": "dpo2-islington"},
        headers=admin,
    )
    assert r.status_code == 422 and r.json()["field"] == "role"

    before = log_kinds(client).count("policy")
    current = client.get("/api/admin/policy", headers=admin).json()
    r = client.put("/api/admin/policy", json={"text": current["text"] + "\n"}, headers=admin)
    assert r.status_code == 200, r.text
    assert log_kinds(client).count("policy") == before + 1
    # A local policy cannot switch the pledge off: a permit never beats its forbid.
    permit_all = '@id("local/everything")\npermit (principal, action, resource);\n'
    r = client.put("/api/admin/policy", json={"text": permit_all}, headers=admin)
    if r.status_code == 200:
        sub = client.post("/api/requests", json=refused(), headers=tok.auth("requester")).json()
        assert sub["outcome"] == "refused"
    else:
        assert r.status_code == 422
    r = client.put("/api/admin/policy", json={"text": "this is not cedar"}, headers=admin)
    assert r.status_code == 422


def test_public_index_counts_without_personal_data(
    served: tuple[TestClient, Service, Tokens],
) -> None:
    client, service, tok = served
    doc = reviewable()
    assert client.post("/api/requests", json=doc, headers=tok.auth("requester")).status_code == 201
    r = client.get("/")  # no token: the index is public
    assert r.status_code == 200
    body = r.json()
    assert body["log"]["verifier_key"] == service.ledger.verifier_key
    assert body["log"]["size"] == service.ledger.size()
    assert body["requests"]["total"] == 1
    assert body["requests"]["by_requester_function"] == {"police": 1}
    assert body["requests"]["by_outcome"] == {"review": 1}
    text = r.text
    for s in doc["subjects"]:
        assert s["ref"] not in text
    assert doc["reference"] not in text and doc["officer"]["name"] not in text
