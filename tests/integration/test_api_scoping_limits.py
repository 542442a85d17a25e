"""Scoping and limits on the HTTP API: fixes to gaps the hostile review found.

- A stranger's wrong codes never lock the real subject out of ``/api/subject/*`` or
  ``/my-data``: the limiter counts per client, and per request id from each client.
- ``GET /api/requests?state=`` takes only real stages and outcomes; a typo is a 422.
- ``POST /api/requests/{id}/deferral`` answers a request held elsewhere with the same 404
  as a missing one, as every other route does.
- A subject refused an appeal (the request already appealed, perhaps by another subject)
  learns nothing of the request's stage or of anyone else's appeal.

The limiter's clock is a test clock, so no test sleeps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pytest
from api_support import Tokens, access_code, api, reviewable
from fastapi.testclient import TestClient
from httpx import Response

from carewall.api.ratelimit import FailureLimiter
from carewall.api.requests import RequestState
from carewall.errors import ConflictError, RateLimitError
from carewall.service import Outcome, Service, Stage
from carewall.web.dpo_common import STATES

MISSING = "r" + "0" * 20
STRANGER, SUBJECT = "203.0.113.9", "198.51.100.7"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    client: TestClient
    svc: Service
    tokens: Tokens
    clock: Clock

    def peer(self, address: str) -> TestClient:
        # https, so the Secure CSRF cookie of the /my-data form is sent back
        return TestClient(self.client.app, base_url="https://testserver", client=(address, 40000))

    def released(self, **changes: Any) -> str:
        rid = self.svc.submit(reviewable(**changes)).id
        self.svc.review(rid, "dpo-islington", True)
        return rid


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with api(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path) as (client, svc, tokens):
        clock = Clock()
        client.app.state.subject_limiter = FailureLimiter(clock=clock)  # type: ignore[attr-defined]
        yield World(client, svc, tokens, clock)


def api_view(c: TestClient, rid: str, code: str) -> Response:
    r: Response = c.post("/api/subject/view", json={"request": rid, "code": code})
    return r


def page_view(c: TestClient, rid: str, code: str) -> Response:
    page = c.get("/my-data")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    data = {"request_id": rid, "code": code, "csrf_token": found.group(1)}
    r: Response = c.post("/my-data", data=data)
    return r


# ----- a stranger cannot lock the subject out ---------------------------------------------


@pytest.mark.parametrize("stranger_uses", [api_view, page_view])
@pytest.mark.parametrize("subject_uses", [api_view, page_view])
def test_a_strangers_wrong_codes_never_block_the_subject(
    world: World, stranger_uses: Any, subject_uses: Any
) -> None:
    rid = world.released()
    code = access_code(world.svc, rid)
    stranger = world.peer(STRANGER)
    statuses = [stranger_uses(stranger, rid, f"guess-{i}").status_code for i in range(7)]
    assert statuses == [401] * 5 + [429] * 2  # the stranger is still stopped
    assert stranger_uses(stranger, rid, code).status_code == 429
    r = subject_uses(world.peer(SUBJECT), rid, code)
    assert r.status_code == 200, r.text


def test_the_subject_can_still_appeal_while_a_stranger_is_blocked(world: World) -> None:
    rid = world.released()
    code = access_code(world.svc, rid)
    stranger = world.peer(STRANGER)
    for i in range(10):
        stranger.post("/api/subject/appeal", json={"request": rid, "code": f"g{i}", "grounds": "x"})
    r = world.peer(SUBJECT).post(
        "/api/subject/appeal", json={"request": rid, "code": code, "grounds": "not me"}
    )
    assert r.status_code == 200, r.text
    assert world.svc.get(rid).appeal is not None


def test_one_client_is_limited_per_request_id_and_over_all_ids() -> None:
    clock = Clock()
    limiter = FailureLimiter(clock=clock)
    for _ in range(5):
        limiter.check("r1", "c1")
        limiter.failure("r1", "c1")
    with pytest.raises(RateLimitError) as blocked:
        limiter.check("r1", "c1")
    assert "r1" not in str(blocked.value) and "c1" not in str(blocked.value)
    limiter.check("r1", "c2")  # another client, the same id: not blocked
    limiter.check("r2", "c1")  # the same client, another id: not yet
    for i in range(15):  # 20 failures in all from c1, over many ids
        limiter.failure(f"x{i}", "c1")
    with pytest.raises(RateLimitError):
        limiter.check("r2", "c1")
    limiter.check("r2", "c2")
    assert limiter.sizes() == (16, 1)
    clock.now += 15 * 60
    limiter.check("r1", "c1")


# ----- the state filter ---------------------------------------------------------------------


def test_the_state_values_are_every_stage_and_outcome() -> None:
    values = set(get_args(RequestState))
    assert values == {s.value for s in Stage} | {o.value for o in Outcome} == set(STATES)


@pytest.mark.parametrize("typo", ["refsued", "Refused", "decided ", "", "x" * 500])
def test_an_unknown_state_is_a_422_listing_the_values(world: World, typo: str) -> None:
    r = world.client.get(
        "/api/requests", params={"state": typo}, headers=world.tokens.auth("requester")
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == "state" and body["fix"]
    assert "'refused'" in body["message"] and "'overturned'" in body["message"]
    if typo:
        assert typo not in r.text


@pytest.mark.parametrize("state", sorted(get_args(RequestState)))
def test_every_known_state_is_accepted(world: World, state: str) -> None:
    rid = world.released()
    r = world.client.get(f"/api/requests?state={state}", headers=world.tokens.auth("release"))
    assert r.status_code == 200, r.text
    ids = {row["id"] for row in r.json()}
    assert (rid in ids) == (state in ("reviewed", "released"))


# ----- deferral: another holder's request is a 404 like a missing one ----------------------


def test_a_deferral_held_elsewhere_is_the_same_404_as_a_missing_request(world: World) -> None:
    rid = world.svc.submit(reviewable(prejudice=True)).id
    world.svc.review(rid, "dpo-islington", True)
    other = world.tokens.auth("other_release")
    body = {"action": "lift"}
    theirs = world.client.post(f"/api/requests/{rid}/deferral", json=body, headers=other)
    missing = world.client.post(f"/api/requests/{MISSING}/deferral", json=body, headers=other)
    status = world.client.get(f"/api/requests/{MISSING}", headers=other)
    assert theirs.status_code == missing.status_code == status.status_code == 404
    assert theirs.json() == missing.json() == status.json()
    assert rid not in theirs.text
    assert all(n.status == "deferred" for n in world.svc.get(rid).notices)
    # the holder's own reviewer still lifts it
    mine = world.client.post(
        f"/api/requests/{rid}/deferral", json=body, headers=world.tokens.auth("release")
    )
    assert mine.status_code == 200, mine.text
    assert all(n.status != "deferred" for n in world.svc.get(rid).notices)


# ----- a refused subject appeal says nothing of the request --------------------------------


def _codes(svc: Service, rid: str) -> list[str]:
    found = [
        re.search(r"Your access code:\s+(\S+)", m["body"]) for m in svc.outbox() if rid in m["body"]
    ]
    return [f.group(1) for f in found if f is not None]


def _two_subjects() -> list[dict[str, Any]]:
    return [
        {"ref": "TEST-A-1", "is_child": False, "is_victim_or_witness": False},
        {"ref": "TEST-B-2", "is_child": False, "is_victim_or_witness": False},
    ]


def _subject_appeal(world: World, rid: str, code: str, grounds: str) -> Response:
    r: Response = world.client.post(
        "/api/subject/appeal", json={"request": rid, "code": code, "grounds": grounds}
    )
    return r


def _assert_neutral(r: Response, rid: str) -> dict[str, Any]:
    assert r.status_code == 409, r.text
    body: dict[str, Any] = r.json()
    assert body["error"] == "conflict" and body["field"] == "request"
    assert "data protection officer" in body["fix"]
    telling_words = ("is appealed", "released", "upheld", "overturned", "subject", "another", rid)
    for telling in telling_words:
        assert telling not in r.text, telling
    return body


def test_a_subject_appealing_twice_is_refused_in_words_that_reveal_no_one_elses(
    world: World,
) -> None:
    """Each subject appeals a release once; a second try reads the same whether another
    subject appealed or not, and so once the release is found wrong on appeal."""
    rid = world.released(subjects=_two_subjects())
    first, second = _codes(world.svc, rid)
    assert _subject_appeal(world, rid, first, "not me").status_code == 200
    again = _assert_neutral(_subject_appeal(world, rid, first, "still not me"), rid)
    assert _subject_appeal(world, rid, second, "nor me").status_code == 200
    assert _assert_neutral(_subject_appeal(world, rid, second, "nor me"), rid) == again
    world.svc.decide_appeal(rid, "appeals-islington", False)  # the release was wrong
    assert _assert_neutral(_subject_appeal(world, rid, first, "again"), rid) == again
    record = world.svc.get(rid)
    assert [(a.by, a.result) for a in record.appeals] == [("subject", "overturned")] * 2


def test_the_service_refuses_a_subject_neutrally_and_the_requester_as_before(
    world: World,
) -> None:
    rid = world.released(subjects=_two_subjects())
    first, _ = _codes(world.svc, rid)
    world.svc.subject_appeal(rid, first, "not me")
    with pytest.raises(ConflictError) as subject:
        world.svc.subject_appeal(rid, first, "still not me")
    assert subject.value.field == "request" and "is appealed" not in subject.value.message
    waiting = world.svc.submit(reviewable()).id
    with pytest.raises(ConflictError) as requester:
        world.svc.appeal(waiting, "requester", "why")
    assert "decided" in requester.value.message  # the requester's own request's stage
