"""``/my-data`` without a browser: the hostile cases, fast (FastAPI's TestClient).

The pages share the API's limiter and service methods, so these check the same things the
API's tests check: CSRF, wrong codes, the rate limit, odd ids, long grounds, appealing
twice; and that the code is never in a URL and never echoed in an error.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from api_support import access_code, api, reviewable
from fastapi.testclient import TestClient
from httpx import Response

from carewall import labels
from carewall.api.models import SubjectAppealIn, SubjectViewIn
from carewall.api.ratelimit import FailureLimiter
from carewall.deadlines import APPEAL_DAYS
from carewall.ledger.keys import create_key
from carewall.service import Service
from carewall.web.subject import CODE_MAX, GROUNDS_MAX, decide_by

WINDOW = 15 * 60
WRONG = "The request ID and access code do not match"
PRIVATE = ["MPS-2026-000123", "ISL-CRN-88213", "DC J. Smith", "Insp. R. Khan", "dpo-islington"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Subject:
    app: object
    svc: Service
    clock: Clock
    request_id: str
    code: str
    tmp: Path

    def client(self, address: str = "10.0.0.1") -> TestClient:
        # https, so the browser-style Secure CSRF cookie is sent back
        return TestClient(self.app, base_url="https://testserver", client=(address, 40000))  # type: ignore[arg-type]

    def appeals(self) -> int:
        return sum(1 for e in self.svc.get(self.request_id).events if e.kind == "appeal_lodged")


@pytest.fixture
def subject(tmp_path: Path) -> Iterator[Subject]:
    with api(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path) as (client, svc, _tokens):
        clock = Clock()
        client.app.state.subject_limiter = FailureLimiter(clock=clock)  # type: ignore[attr-defined]
        got = svc.submit(reviewable())
        svc.review(got.id, "dpo-islington", True)
        yield Subject(client.app, svc, clock, got.id, access_code(svc, got.id), tmp_path)


def csrf(c: TestClient) -> str:
    page = c.get("/my-data")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def look(c: TestClient, request_id: str, code: str, token: str | None = None) -> Response:
    data = {"request_id": request_id, "code": code}
    data["csrf_token"] = csrf(c) if token is None else token
    return c.post("/my-data", data=data)


def appeal(c: TestClient, s: Subject, grounds: str, token: str | None = None) -> Response:
    data = {"request_id": s.request_id, "code": s.code, "grounds": grounds}
    data["csrf_token"] = csrf(c) if token is None else token
    return c.post("/my-data/appeal", data=data)


def summary(r: Response) -> list[tuple[str, str]]:
    """The error summary's items: (href, text)."""
    box = r.text.split('class="govuk-error-summary', 1)
    assert len(box) == 2, "no error summary"
    items = re.findall(r'<a href="(#[^"]+)">(.*?)</a>', box[1].split("</ul>", 1)[0], re.S)
    return [(h, html.unescape(t).strip()) for h, t in items]


def test_the_pages_limits_are_the_apis() -> None:
    def most(field: object) -> int:
        return next(m.max_length for m in field.metadata if hasattr(m, "max_length"))  # type: ignore[attr-defined]

    assert most(SubjectAppealIn.model_fields["grounds"]) == GROUNDS_MAX
    assert most(SubjectViewIn.model_fields["code"]) == CODE_MAX


def test_the_form_asks_for_both_fields_without_remembering_them(subject: Subject) -> None:
    r = subject.client().get("/my-data")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    for field in ('id="request-id" name="request_id"', 'id="code" name="code"'):
        tag = re.search(rf"<input[^>]*{field}[^>]*>", r.text)
        assert tag is not None and 'autocomplete="off"' in tag.group(0)
    code_tag = re.search(r'<input[^>]*id="code"[^>]*>', r.text)
    assert code_tag is not None and 'spellcheck="false"' in code_tag.group(0)
    assert 'method="post" action="/my-data"' in r.text
    assert "Request ID" in r.text and "Access code" in r.text


def test_the_right_code_shows_what_was_shared_from_the_post(subject: Subject) -> None:
    c = subject.client()
    r = look(c, subject.request_id, subject.code)
    assert r.status_code == 200 and not r.history  # rendered from the POST, no redirect
    assert r.headers["cache-control"] == "no-store"
    text = html.unescape(r.text)
    for cat in ("name", "address"):
        assert labels.label("category", cat) in text
    assert labels.label("category", "financial") not in text  # refused by the policy
    assert labels.label("purpose", "prevention_detection_of_crime") in text
    assert "This service checked that this sharing is recorded in the public log" in text
    assert "could not confirm" not in text
    assert "A release reviewer at Islington Council" in text
    for private in PRIVATE:  # never the requester's reference, names or the person's ref
        assert private not in text
    assert subject.code not in c.cookies.values()


def test_a_wrong_code_and_an_unknown_request_get_one_message(subject: Subject) -> None:
    c = subject.client()
    wrong = look(c, subject.request_id, "not-the-code")
    unknown = look(c, "r" + secrets.token_hex(10), subject.code)
    for r in (wrong, unknown):
        assert r.status_code == 401
        assert [t for _, t in summary(r)] == [summary(wrong)[0][1]]
        assert summary(r)[0][1].startswith(WRONG)
        assert summary(r)[0][0] == "#request-id"
        assert 'id="code-error"' in r.text and 'id="request-id-error"' in r.text
    assert "not-the-code" not in wrong.text and subject.code not in unknown.text


@pytest.mark.parametrize("path", ["/my-data", "/my-data/appeal"])
@pytest.mark.parametrize("token", [None, "", "forged-" + "x" * 40])
def test_a_post_without_the_right_csrf_token_is_refused(
    subject: Subject, path: str, token: str | None
) -> None:
    c = subject.client()
    csrf(c)  # the visitor has a CSRF cookie; the form does not carry its value
    data = {"request_id": subject.request_id, "code": subject.code, "grounds": "Not me"}
    if token is not None:
        data["csrf_token"] = token
    r = c.post(path, data=data)
    assert r.status_code == 403
    assert summary(r)[0][1].startswith("This form has expired")
    assert subject.code not in r.text and "Islington Council shared" not in r.text
    assert subject.appeals() == 0
    assert subject.svc.get(subject.request_id).appeal is None


def test_another_visitors_csrf_token_does_not_work(subject: Subject) -> None:
    token = csrf(subject.client("10.0.0.7"))
    r = appeal(subject.client("10.0.0.8"), subject, "Not me", token=token)
    assert r.status_code == 403 and subject.appeals() == 0


def test_blank_fields_get_their_own_messages_and_count_for_nothing(subject: Subject) -> None:
    limiter: FailureLimiter = subject.app.state.subject_limiter  # type: ignore[attr-defined]
    r = look(subject.client(), "  ", "")
    assert r.status_code == 400
    assert summary(r) == [
        ("#request-id", "Enter the request ID from your letter"),
        ("#code", "Enter the access code from your letter"),
    ]
    assert limiter.sizes() == (0, 0)


def test_repeated_wrong_codes_are_rate_limited_like_the_api(subject: Subject) -> None:
    c = subject.client("10.0.0.1")
    api_client = subject.client("10.0.0.1")  # the same address: only its own failures count
    for _ in range(3):  # the pages and the API count on the same limiter
        assert look(c, subject.request_id, "guess").status_code == 401
    for _ in range(2):
        body = {"request": subject.request_id, "code": "guess"}
        assert api_client.post("/api/subject/view", json=body).status_code == 401
    r = look(c, subject.request_id, subject.code)  # blocked, even with the right code
    assert r.status_code == 429
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= WINDOW
    ((href, text),) = summary(r)
    assert href == "#code" and "Wait 15 minutes, then try again" in text
    assert subject.request_id not in text and "10.0.0.1" not in r.text
    blocked = appeal(c, subject, "Not me")
    assert blocked.status_code == 429 and subject.appeals() == 0
    subject.clock.now += retry
    assert look(c, subject.request_id, subject.code).status_code == 200


def test_many_failures_from_one_client_are_rate_limited(subject: Subject) -> None:
    c = subject.client("10.0.0.3")
    for _ in range(20):
        assert look(c, "r" + secrets.token_hex(10), "guess").status_code == 401
    r = look(c, subject.request_id, subject.code)
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert look(subject.client("10.0.0.4"), subject.request_id, subject.code).status_code == 200


@pytest.mark.parametrize(
    ("name", "spell"),
    [
        ("inner space", lambda rid: rid[:5] + " " + rid[5:]),
        ("capital R", lambda rid: "R" + rid[1:]),
        ("cyrillic a look-alike", lambda rid: rid[:-1] + "\u0430"),
        ("fullwidth digits", lambda rid: "r" + "\uff10" * 20),
        ("null byte", lambda rid: rid + "\x00"),
        ("very long", lambda rid: rid * 500),
        ("markup", lambda rid: "<script>alert(1)</script>"),
    ],
)
def test_odd_request_ids_are_refused_as_ids_and_never_counted(
    subject: Subject, name: str, spell: object
) -> None:
    limiter: FailureLimiter = subject.app.state.subject_limiter  # type: ignore[attr-defined]
    odd = spell(subject.request_id)  # type: ignore[operator]
    r = look(subject.client(), odd, subject.code)
    assert r.status_code == 400, name
    ((href, text),) = summary(r)
    assert href == "#request-id" and text.startswith("Request ID must be the letter r")
    assert "<script>alert" not in r.text
    assert limiter.sizes() == (0, 0)


@pytest.mark.parametrize("pasted", ["{rid}\n", " {rid} ", "\t{rid}\r\n"])
def test_spaces_a_paste_adds_around_the_id_are_dropped(subject: Subject, pasted: str) -> None:
    r = look(subject.client(), pasted.format(rid=subject.request_id), f" {subject.code}\n")
    assert r.status_code == 200 and "What was shared about you" in r.text


def test_an_over_long_code_is_refused_unchecked(subject: Subject) -> None:
    r = look(subject.client(), subject.request_id, "x" * 201)
    assert r.status_code == 400
    assert summary(r) == [("#code", "Enter the access code exactly as it is on your letter")]


def test_an_appeal_is_lodged_once_and_shown_after(subject: Subject) -> None:
    c = subject.client()
    r = appeal(c, subject, "The address is not mine.\r\nPlease check.")
    assert r.status_code == 200 and "Appeal sent" in r.text and "What happens next" in r.text
    assert subject.appeals() == 1
    lodged = subject.svc.get(subject.request_id).appeal
    assert lodged is not None and lodged.grounds == "The address is not mine.\nPlease check."
    # the day it must be decided by: APPEAL_DAYS after it was lodged, as the auditor counts
    # (the page says it in UK time, one day either side of UTC at most)
    by = decide_by(lodged.lodged_at)
    assert f"They must decide by {by}." in r.text
    day = datetime.fromisoformat(lodged.lodged_at) + timedelta(days=APPEAL_DAYS)
    assert abs((datetime.strptime(by, "%d %B %Y").date() - day.date()).days) <= 1
    again = appeal(c, subject, "And again")
    assert again.status_code == 409
    assert summary(again) == [
        ("#appeal", "You have already appealed. What is happening to it is shown below")
    ]
    assert "Waiting for a decision" in again.text and 'name="grounds"' not in again.text
    assert subject.appeals() == 1
    shown = look(c, subject.request_id, subject.code)
    assert "Your appeal" in shown.text and "The address is not mine." in shown.text
    assert f"They must decide it by {by}." in shown.text


@pytest.mark.parametrize(
    ("grounds", "message"),
    [
        ("", "Enter why you want to appeal"),
        ("  \r\n ", "Enter why you want to appeal"),
        ("x" * (GROUNDS_MAX + 1), "Why you want to appeal must be 10,000 characters or fewer"),
    ],
)
def test_blank_or_over_long_grounds_are_refused(
    subject: Subject, grounds: str, message: str
) -> None:
    r = appeal(subject.client(), subject, grounds)
    assert r.status_code == 400
    assert summary(r) == [("#grounds", message)]
    assert 'id="grounds-error"' in r.text
    assert subject.appeals() == 0


def test_grounds_at_the_limit_count_line_breaks_once(subject: Subject) -> None:
    grounds = "x" * (GROUNDS_MAX - 1) + "\r\n"  # 10,000 characters once CRLF is one break
    assert appeal(subject.client(), subject, grounds).status_code == 200
    assert subject.appeals() == 1


def test_an_appeal_with_a_wrong_code_is_refused_and_counted(subject: Subject) -> None:
    limiter: FailureLimiter = subject.app.state.subject_limiter  # type: ignore[attr-defined]
    c = subject.client()
    token = csrf(c)
    data = {"request_id": subject.request_id, "code": "tampered", "grounds": "Not me"}
    r = c.post("/my-data/appeal", data={**data, "csrf_token": token})
    assert r.status_code == 401 and summary(r)[0][1].startswith(WRONG)
    assert subject.appeals() == 0 and limiter.sizes() == (1, 1)


@pytest.mark.parametrize(
    ("uphold", "said"),
    [
        (True, ["kept the first decision", labels.label("state", "upheld")]),
        # the release now stands refused: the page still says what was sent, and that
        # it should not have been
        (False, ["changed the first decision", "should not have been shared"]),
    ],
)
def test_a_decided_appeal_is_shown_and_cannot_be_made_again(
    subject: Subject, uphold: bool, said: list[str]
) -> None:
    c = subject.client()
    assert appeal(c, subject, "Not me").status_code == 200
    subject.svc.decide_appeal(subject.request_id, "appeals-islington", uphold)
    page = look(c, subject.request_id, subject.code)
    text = html.unescape(page.text)
    assert page.status_code == 200 and 'name="grounds"' not in text
    for words in [*said, labels.label("category", "address"), "This service checked"]:
        assert words in text
    assert "appeals-islington" not in text  # the appeal reviewer's role, never who
    assert appeal(c, subject, "Still not me").status_code == 409
    assert subject.appeals() == 1


def test_get_on_the_appeal_route_is_not_a_page(subject: Subject) -> None:
    r = subject.client().get("/my-data/appeal", headers={"Accept": "text/html"})
    assert r.status_code == 405


def test_a_failed_check_is_said_plainly(subject: Subject) -> None:
    other = create_key(subject.tmp / "other.key", subject.svc.ledger.origin).vkey()
    real = subject.svc.ledger.verifier_key
    subject.svc.ledger.verifier_key = other  # the checkpoint no longer verifies
    try:
        r = look(subject.client(), subject.request_id, subject.code)
    finally:
        subject.svc.ledger.verifier_key = real
    assert r.status_code == 200
    text = html.unescape(r.text)
    assert "could not confirm that this is recorded correctly" in text
    assert "This service checked" not in text and "It also checked" not in text


def test_the_letter_names_the_page_and_the_fields(subject: Subject) -> None:
    body = next(m["body"] for m in subject.svc.outbox() if subject.request_id in m["body"])
    assert "'Your data' page of this service (its address ends in /my-data)" in body
    assert f"Request ID:        {subject.request_id}" in body
    assert "Request ID and the Access code" in body
    assert body.rstrip("\n").splitlines()[-1] == f"Your access code:  {subject.code}"
    subject.svc.public_url = "https://carewall.example/"  # type: ignore[attr-defined]
    got = subject.svc.submit(reviewable())
    subject.svc.review(got.id, "dpo-islington", True)
    body = next(m["body"] for m in subject.svc.outbox() if got.id in m["body"])
    assert "Go to https://carewall.example/my-data\n" in body
