"""The reply to a decision: the full record, or with ``Prefer: return=minimal`` (RFC 7240)
the summary and the notices' job, whose size does not grow with the release (issue 13, 3).
"""

from __future__ import annotations

import pytest
from api_support import Tokens, example, refused
from fastapi.testclient import TestClient

from carewall.api.review import wants_minimal
from carewall.service import Service

MINIMAL = {"Prefer": "return=minimal"}


def many(n: int) -> dict[str, object]:
    doc = example(categories=["name", "address"])
    doc["subjects"] = [
        {"ref": f"S{i:06d}", "is_child": False, "is_victim_or_witness": False}
        for i in range(1, n + 1)
    ]
    return doc


def submitted(client: TestClient, tok: Tokens, doc: dict[str, object]) -> str:
    r = client.post("/api/requests", json=doc, headers=tok.auth("requester"))
    assert r.status_code == 201, r.text
    rid: str = r.json()["id"]
    return rid


@pytest.mark.parametrize(
    ("header", "minimal"),
    [
        pytest.param(None, False, id="absent"),
        pytest.param("", False, id="blank"),
        pytest.param("return=minimal", True, id="plain"),
        pytest.param("RETURN = Minimal", True, id="odd-case-and-spaces"),
        pytest.param("respond-async, return=minimal; x=1", True, id="among-others"),
        pytest.param("return=representation", False, id="representation"),
        pytest.param("return=minimalist", False, id="longer-word"),
        pytest.param("x-return=minimal", False, id="other-name"),
    ],
)
def test_the_prefer_header_is_read_as_rfc7240_says(header: str | None, minimal: bool) -> None:
    assert wants_minimal(header) is minimal


def test_a_minimal_reply_holds_the_summary_and_the_job_not_the_subjects(
    served: tuple[TestClient, Service, Tokens],
) -> None:
    client, _service, tok = served
    rid = submitted(client, tok, many(30))
    r = client.post(
        f"/api/requests/{rid}/review",
        json={"release": True},
        headers={**tok.auth("release"), **MINIMAL},
    )
    assert r.status_code == 200, r.text
    assert r.headers["Preference-Applied"] == "return=minimal"
    body = r.json()
    assert body["id"] == rid and body["outcome"] == "released" and body["subjects"] == 30
    assert "notices" not in body and "reference" not in body  # nothing per subject, no refs
    assert body["job"]["kind"] == "notices" and body["job"]["total"] == 30
    # the full record is where it always was
    full = client.get(f"/api/requests/{rid}/record", headers=tok.auth("release")).json()
    assert len(full["subjects"]) == 30 and full["outcome"] == "released"


def test_without_the_preference_the_reply_is_the_full_record(
    served: tuple[TestClient, Service, Tokens],
) -> None:
    client, _service, tok = served
    rid = submitted(client, tok, many(3))
    r = client.post(
        f"/api/requests/{rid}/review", json={"release": True}, headers=tok.auth("release")
    )
    assert r.status_code == 200, r.text
    assert "Preference-Applied" not in r.headers
    body = r.json()
    assert [s["ref"] for s in body["subjects"]] == ["S000001", "S000002", "S000003"]
    assert body["job"]["total"] == 3 and len(body["notices"]) == 3


def test_a_refusal_with_the_minimal_preference_has_no_job(
    served: tuple[TestClient, Service, Tokens],
) -> None:
    client, _service, tok = served
    rid = submitted(client, tok, many(2))
    r = client.post(
        f"/api/requests/{rid}/review",
        json={"release": False, "note": "not necessary"},
        headers={**tok.auth("release"), **MINIMAL},
    )
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "refused" and r.json()["job"] is None


def test_an_appeal_decision_honours_the_minimal_preference(
    served: tuple[TestClient, Service, Tokens],
) -> None:
    client, _service, tok = served
    rid = submitted(client, tok, refused())
    r = client.post(
        f"/api/requests/{rid}/appeal",
        json={"grounds": "we disagree"},
        headers=tok.auth("requester"),
    )
    assert r.status_code == 200, r.text
    r = client.post(
        f"/api/requests/{rid}/appeal/decision",
        json={"uphold": True},
        headers={**tok.auth("appeal"), **MINIMAL},
    )
    assert r.status_code == 200, r.text
    assert r.headers["Preference-Applied"] == "return=minimal"
    assert r.json()["stage"] == "upheld" and isinstance(r.json()["subjects"], int)


def test_a_reviewer_elsewhere_gets_the_404_of_a_missing_request_before_anything_is_decided(
    served: tuple[TestClient, Service, Tokens],
) -> None:
    """The one-row scope check answers as the full-record one did: no hint it exists."""
    client, service, tok = served
    rid = submitted(client, tok, many(2))
    size = service.ledger.size()
    theirs = client.post(
        f"/api/requests/{rid}/review",
        json={"release": True},
        headers={**tok.auth("other_release"), **MINIMAL},
    )
    missing = client.post(
        "/api/requests/r0000000000000000000000/review",
        json={"release": True},
        headers={**tok.auth("other_release"), **MINIMAL},
    )
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"] == missing.json()["error"]
    assert service.ledger.size() == size and service.get(rid).stage == "decided"
