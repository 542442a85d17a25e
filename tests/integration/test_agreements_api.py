"""``/api/agreements`` for the holder's admin, on SQLite and PostgreSQL (the ``served``
fixture; every log it writes passes the auditor at teardown): a forbidden agreement refused
(201, logged), another holder's agreements invisible, malformed bodies named, paging."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from api_support import HOLDER, Tokens, reviewable
from fastapi.testclient import TestClient

from carewall.service import Service

Served = tuple[TestClient, Service, Tokens]


def doc(**changes: Any) -> dict[str, Any]:
    start = (datetime.now(UTC).date() - timedelta(days=30)).isoformat()
    out: dict[str, Any] = {
        "id": "islington-met-police-crime-isa",
        "holder": HOLDER,
        "recipient": "met-police",
        "purpose": "prevention_detection_of_crime",
        "legal_basis": "dpa2018_sch2_p1_para2_crime",
        "categories": ["name", "address"],
        "start": start,
        "subjects": {"victims_or_witnesses": False},
    }
    out.update(changes)
    return out


def test_police_victim_referrals_to_the_home_office_are_refused_over_http(served: Served) -> None:
    client, service, tok = served
    body = doc(id="islington-ho-referrals", recipient="home-office-ie", subjects={})
    r = client.post("/api/agreements", json=body, headers=tok.auth("admin"))
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "refused"
    # "for the detection of crime" does not hide the recipient: the pledge names it
    assert r.json()["rules"] == ["pledge/no-immigration-recipient"]
    last = json.loads(service.ledger.entries(service.ledger.size() - 1, service.ledger.size())[0])
    assert (last["kind"], last["action"]) == ("agreement", "refused")


def test_a_withdrawn_agreement_is_counted_and_destruction_asked_over_http(served: Served) -> None:
    client, service, tok = served
    assert client.post("/api/agreements", json=doc(), headers=tok.auth("admin")).status_code == 201
    rid = service.submit(reviewable()).id
    r = client.post(
        f"/api/requests/{rid}/review", json={"release": True}, headers=tok.auth("release")
    )
    assert r.status_code == 200, r.text
    r = client.post(
        "/api/agreements/islington-met-police-crime-isa/withdraw",
        json={"due_days": 14},
        headers=tok.auth("admin"),
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["releases"] == 1 and got["released"] == ["address", "name"]
    want_due = (service.clock().date() + timedelta(days=14)).isoformat()
    assert got["due"] == want_due and got["overdue"] is False
    again = client.post(
        "/api/agreements/islington-met-police-crime-isa/withdraw", headers=tok.auth("admin")
    )
    assert again.status_code == 409 and again.json()["field"] == "id"


def test_only_the_holder_s_admin_sees_or_registers_its_agreements(served: Served) -> None:
    client, _, tok = served
    r = client.post(
        "/api/agreements", json=doc(holder="whittington-health"), headers=tok.auth("admin")
    )
    assert r.status_code == 403
    for role in ("requester", "release"):
        assert client.get("/api/agreements", headers=tok.auth(role)).status_code == 403
    assert client.get("/api/agreements", headers=tok.auth("admin")).json() == []
    missing = client.get("/api/agreements/someone-elses", headers=tok.auth("admin"))
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (doc(recipient="Met-Police"), "recipient"),
        (doc(end="2001-01-01"), "end"),
        (doc(categories="name"), "categories"),
        (doc(parties=["x"]), "parties"),
        (doc(start="2026-02-30"), "start"),
    ],
)
def test_malformed_agreements_are_named_never_a_500(
    served: Served, body: dict[str, Any], field: str
) -> None:
    client, _, tok = served
    r = client.post("/api/agreements", json=body, headers=tok.auth("admin"))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


def test_raw_bodies_never_500(served: Served) -> None:
    client, _, tok = served
    headers = {**tok.auth("admin"), "Content-Type": "application/json"}
    for raw in (b"", b"[]", b"{", b'"x"', b"null"):
        r = client.post("/api/agreements", content=raw, headers=headers)
        assert r.status_code == 422, (raw, r.text)
        assert r.json()["error"]
    r = client.post(
        "/api/agreements/x/destroyed", json={"certificate": 5}, headers=tok.auth("admin")
    )
    assert r.status_code in (404, 422)


def test_agreements_are_paged_by_id(served: Served) -> None:
    client, _, tok = served
    for n in range(3):
        body = doc(id=f"isa-{n}")
        assert (
            client.post("/api/agreements", json=body, headers=tok.auth("admin")).status_code == 201
        )
    r = client.get("/api/agreements?limit=2", headers=tok.auth("admin"))
    assert [a["id"] for a in r.json()] == ["isa-0", "isa-1"]
    link = r.headers["link"].split(";")[0].strip("<>")
    r2 = client.get(link, headers=tok.auth("admin"))
    assert [a["id"] for a in r2.json()] == ["isa-2"] and "link" not in r2.headers
