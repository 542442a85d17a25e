"""The subject's view and appeal answer 429 after repeated wrong codes (issue item 8).

More than 5 wrong codes for one request id from one client address, or more than 20
failures from one client address, within 15 minutes, and that client's next attempt answers
429 with Retry-After, whatever code it carries; other clients are not blocked. The limiter's
clock is a test clock, so no test sleeps.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import access_code, api, example
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from carewall.api.ratelimit import FailureLimiter, Limit, limiter_of
from carewall.errors import RateLimitError
from carewall.service import Service

WINDOW = 15 * 60
ERROR_KEYS = {"error", "message", "field", "fix"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Subject:
    """One released request, its subject's code, and clients at different addresses."""

    def __init__(self, client: TestClient, svc: Service, clock: Clock) -> None:
        self.app = client.app
        self.svc = svc
        self.clock = clock
        got = svc.submit(example())
        svc.review(got.id, "dpo-islington", True)
        self.request_id = got.id
        self.code = access_code(svc, got.id)
        self._clients: list[TestClient] = []

    def client(self, address: str) -> TestClient:
        c = TestClient(self.app, client=(address, 40000))
        self._clients.append(c)
        return c

    def close(self) -> None:
        for c in self._clients:
            c.close()


@pytest.fixture
def subject(sqlite_url: str, tmp_path: Path) -> Iterator[Subject]:
    with api(sqlite_url, tmp_path) as (client, svc, _tokens):
        clock = Clock()
        client.app.state.subject_limiter = FailureLimiter(clock=clock)
        s = Subject(client, svc, clock)
        try:
            yield s
        finally:
            s.close()


def view(c: TestClient, request_id: str, code: str, path: str = "view") -> int:
    body = {"request": request_id, "code": code}
    if path == "appeal":
        body["grounds"] = "I was not involved"
    return c.post(f"/api/subject/{path}", json=body).status_code


def assert_429(c: TestClient, request_id: str, code: str, secret_bits: list[str]) -> int:
    r = c.post("/api/subject/view", json={"request": request_id, "code": code})
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["error"] == "too_many_requests" and set(body) <= ERROR_KEYS
    assert body["field"] == "code" and body["fix"]
    for bit in secret_bits:  # never the request id, the code or the address
        assert bit not in r.text
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= WINDOW
    return retry


def test_six_wrong_codes_for_one_request_id(subject: Subject) -> None:
    a = subject.client("10.0.0.1")
    for _ in range(5):
        assert view(a, subject.request_id, "wrong-code") == 401
    # blocked now, even with the right code; another client is not
    retry = assert_429(a, subject.request_id, subject.code, [subject.request_id, "10.0.0.1"])
    b = subject.client("10.0.0.2")
    assert view(b, subject.request_id, subject.code) == 200
    # another request id is not blocked for the same client
    assert view(a, "r" + secrets.token_hex(10), "wrong-code") == 401
    subject.clock.now += retry
    assert view(a, subject.request_id, subject.code) == 200


def test_twenty_failures_from_one_client(subject: Subject) -> None:
    a = subject.client("10.0.0.1")
    for _ in range(20):  # a different unknown request id each time: only the client counts
        assert view(a, "r" + secrets.token_hex(10), "guess") == 401
    assert_429(a, subject.request_id, subject.code, [subject.request_id, "10.0.0.1"])
    # a fresh client is unaffected, and the real request id is not blocked
    fresh = subject.client("10.0.0.99")
    assert view(fresh, subject.request_id, subject.code) == 200
    assert view(fresh, subject.request_id, "wrong-code") == 401
    subject.clock.now += WINDOW
    assert view(a, subject.request_id, subject.code) == 200


def test_a_success_resets_no_one_elses_count(subject: Subject) -> None:
    a, b = subject.client("10.0.0.1"), subject.client("10.0.0.2")
    for _ in range(4):
        assert view(a, subject.request_id, "wrong-code") == 401
    assert view(b, subject.request_id, subject.code) == 200
    assert view(a, subject.request_id, "wrong-code") == 401  # the fifth
    assert_429(a, subject.request_id, subject.code, [])
    assert view(b, subject.request_id, subject.code) == 200  # a's failures never block b


def test_the_appeal_shares_the_limit(subject: Subject) -> None:
    a = subject.client("10.0.0.1")
    for path in ("appeal", "view", "appeal", "view", "appeal"):
        assert view(a, subject.request_id, "wrong-code", path) == 401
    assert view(a, subject.request_id, subject.code, "appeal") == 429
    assert subject.svc.get(subject.request_id).appeal is None
    subject.clock.now += WINDOW
    assert view(a, subject.request_id, subject.code, "appeal") == 200
    assert subject.svc.get(subject.request_id).appeal is not None


def test_an_app_without_a_limiter_gets_the_default_one(sqlite_url: str, tmp_path: Path) -> None:
    with api(sqlite_url, tmp_path) as (client, svc, _tokens):
        got = svc.submit(example())
        for _ in range(5):
            assert view(client, got.id, "wrong-code") == 401
        assert view(client, got.id, "wrong-code") == 429
        limiter = limiter_of(client.app)
        assert limiter is limiter_of(client.app)
        assert limiter.sizes() == (1, 1)


def test_the_429_is_in_the_openapi_document(subject: Subject) -> None:
    doc = subject.client("10.0.0.1").get("/openapi.json").json()
    for path in ("/api/subject/view", "/api/subject/appeal"):
        resp = doc["paths"][path]["post"]["responses"]["429"]
        assert "Retry-After" in resp["headers"]


# ----- the limiter on its own ------------------------------------------------------------


def test_threads_count_every_failure() -> None:
    clock = Clock()
    limiter = FailureLimiter(
        per_request=Limit(400, WINDOW), per_client=Limit(400, WINDOW), clock=clock
    )
    start = threading.Barrier(4)

    def fail() -> None:
        start.wait()
        for _ in range(100):
            limiter.failure("r1", "c1")

    threads = [threading.Thread(target=fail) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    with pytest.raises(RateLimitError):
        limiter.check("r1", "c1")
    with pytest.raises(RateLimitError):
        limiter.check("r2", "c1")


def test_memory_stays_bounded() -> None:
    clock = Clock()
    limiter = FailureLimiter(clock=clock, max_keys=100)
    for i in range(10_000):
        limiter.failure(f"r{i}", f"c{i}")
    assert limiter.sizes() == (100, 100)
    clock.now += WINDOW  # every key's failures have left the window
    limiter.failure("r-new", "c-new")
    assert limiter.sizes() == (1, 1)


@settings(deadline=None, max_examples=200)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 400), st.sampled_from(["a", "b", "c"]), st.booleans()),
        max_size=60,
    )
)
def test_blocked_exactly_while_the_window_holds_the_limit(
    steps: list[tuple[int, str, bool]],
) -> None:
    """Against a model: a key is blocked iff at least `limit` of its failures are less than
    a window old, and Retry-After is exactly when that stops (whole seconds here)."""
    limit = Limit(3, 900)
    clock = Clock()
    limiter = FailureLimiter(per_request=limit, per_client=Limit(10**6, 900), clock=clock)
    failures: dict[str, list[float]] = {}
    for advance, key, fail in steps:
        clock.now += advance
        recent = [t for t in failures.get(key, []) if t > clock.now - limit.window]
        blocked = len(recent) >= limit.failures
        try:
            limiter.check(key, "client")
        except RateLimitError as e:
            assert blocked
            expected = sorted(recent)[-limit.failures] + limit.window - clock.now
            assert e.retry_after == max(1, int(expected))
        else:
            assert not blocked
            if fail:
                limiter.failure(key, "client")
                failures.setdefault(key, []).append(clock.now)


def test_retry_after_is_never_below_one_second() -> None:
    assert RateLimitError("x", retry_after=0).retry_after == 1
    assert re.fullmatch(r"\d+", str(RateLimitError("x", retry_after=12).retry_after))
