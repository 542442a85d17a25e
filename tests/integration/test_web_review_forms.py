"""The reviewers' pages without a browser: the hostile cases, fast (FastAPI's TestClient).

The pages call the same service methods as the API's review routes, with the same scoping,
so these check what the API's tests check: CSRF, another holder's request (404, exactly as
a missing one), the reviewer from the session and never the form, the roles, odd ids and
field values, and a decision sent twice (a clear page, not a 500).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_support import HOLDER, Tokens, access_code, api, example, refused, reviewable
from fastapi.testclient import TestClient
from httpx import Response

from carewall.api.admin import issue_token
from carewall.deadlines import APPEAL_DAYS
from carewall.service import Service

HTML = {"accept": "text/html"}
PRIVATE = ["MPS-2026-000123", "ISL-CRN-88213", "DC J. Smith", "Suspect in a series"]


@dataclass
class Web:
    client: TestClient
    svc: Service
    tokens: Tokens

    def sign_in(self, token: str) -> str:
        """Sign in with ``token`` (as a browser would); the session's CSRF token."""
        self.client.cookies.clear()
        page = self.client.get("/sign-in", headers=HTML)
        r = self.client.post(
            "/sign-in",
            data={"csrf_token": csrf_of(page), "token": token},
            headers=HTML,
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        return csrf_of(self.client.get("/sign-out", headers=HTML))

    def post(self, path: str, data: dict[str, Any]) -> Response:
        return self.client.post(path, data=data, headers=HTML, follow_redirects=False)

    def get(self, path: str) -> Response:
        return self.client.get(path, headers=HTML, follow_redirects=False)

    def waiting(self, **changes: Any) -> str:
        got = self.svc.submit(reviewable(**changes))
        assert got.outcome == "review"
        return got.id


def csrf_of(page: Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def errors_of(page: Response) -> list[str]:
    """The error summary's links (field ids), in order."""
    summary = page.text.split('class="govuk-error-summary"', 1)
    assert len(summary) == 2, "no error summary"
    return re.findall(r'<a href="#([^"]+)"', summary[1].split("</ul>", 1)[0])


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    with api(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path) as (client, svc, tokens):
        client.base_url = "https://testserver"  # so the Secure session cookie is sent back
        yield Web(client, svc, tokens)


def test_csrf_missing_or_wrong_is_refused_and_nothing_is_recorded(web: Web) -> None:
    rid = web.waiting()
    other = web.sign_in(web.tokens.appeal)  # a real token, but another session's
    web.sign_in(web.tokens.release)
    size = web.svc.ledger.size()
    for token in (None, "", "x" * 43, other, "🙂"):
        data = {"decision": "release", "note": "n"}
        if token is not None:
            data["csrf_token"] = token
        r = web.post(f"/review/requests/{rid}", data)
        assert r.status_code == 403, token
        assert "did not come from this site" in r.text
    assert web.svc.get(rid).stage == "decided"
    assert web.svc.ledger.size() == size


def test_another_holders_reviewer_gets_the_same_404_as_a_missing_request(web: Web) -> None:
    rid = web.waiting()
    csrf = web.sign_in(web.tokens.other_release)
    held_elsewhere = web.get(f"/review/requests/{rid}")
    missing = web.get("/review/requests/r00000000000000000000")
    assert held_elsewhere.status_code == missing.status_code == 404
    strip = re.compile(r'nonce="[^"]*"|value="[^"]*"')
    assert strip.sub("", held_elsewhere.text) == strip.sub("", missing.text)
    for text in [*PRIVATE, rid]:
        assert text not in held_elsewhere.text
    for path in (f"/review/requests/{rid}", f"/review/requests/{rid}/decided"):
        assert web.get(path).status_code == 404
    r = web.post(f"/review/requests/{rid}", {"csrf_token": csrf, "decision": "release"})
    assert r.status_code == 404
    assert web.svc.get(rid).stage == "decided"
    assert rid not in web.get("/review").text  # nor in their queue


def test_the_reviewer_is_the_sessions_never_the_forms(web: Web) -> None:
    rid = web.waiting()
    csrf = web.sign_in(web.tokens.release)
    data = {"csrf_token": csrf, "decision": "refuse", "reviewer": "appeals-islington"}
    data["reviewer_id"] = "ig-whittington"
    r = web.post(f"/review/requests/{rid}", data)
    assert r.status_code == 303
    assert r.headers["location"] == f"/review/requests/{rid}/decided"
    assert web.svc.get(rid).reviewer == "dpo-islington"


def test_each_decision_is_only_for_its_role(web: Web) -> None:
    rid = web.waiting()
    appealed = web.waiting()
    web.svc.review(appealed, "dpo-islington", True)
    web.svc.deliver_pending()
    web.svc.subject_appeal(appealed, access_code(web.svc, appealed), "not me")
    size = web.svc.ledger.size()

    csrf = web.sign_in(web.tokens.appeal)
    r = web.post(f"/review/requests/{rid}", {"csrf_token": csrf, "decision": "release"})
    assert r.status_code == 403
    assert web.get(f"/review/requests/{rid}/deferral").status_code == 403

    csrf = web.sign_in(web.tokens.release)
    r = web.post(f"/review/requests/{appealed}/appeal", {"csrf_token": csrf, "decision": "uphold"})
    assert r.status_code == 403

    csrf = web.sign_in(web.tokens.admin)  # the DPO has the register, not the queue
    assert web.get("/review").status_code == 403
    assert web.get(f"/review/requests/{rid}").status_code == 403
    assert web.svc.ledger.size() == size


def test_not_signed_in_and_requester_tokens(web: Web) -> None:
    rid = web.waiting()
    for path in ("/review", f"/review/requests/{rid}"):
        r = web.get(path)
        assert r.status_code == 401
        assert 'href="/sign-in"' in r.text
    page = web.get("/sign-in")
    r = web.post("/sign-in", {"csrf_token": csrf_of(page), "token": web.tokens.requester})
    assert r.status_code == 403
    assert "requester tokens cannot sign in" in r.text.lower()


@pytest.mark.parametrize(
    "odd",
    [
        "r%20abc",
        "r\u0430bc",  # Cyrillic a
        "rabc%0A",
        "r" * 1000,
        "..%2F..%2Fapi",
        "%00",
    ],
)
def test_odd_ids_are_404_pages(web: Web, odd: str) -> None:
    csrf = web.sign_in(web.tokens.release)
    for path in (f"/review/requests/{odd}", f"/review/requests/{odd}/decided"):
        r = web.get(path)
        assert r.status_code == 404, path
        assert "Page not found" in r.text
    r = web.post(f"/review/requests/{odd}", {"csrf_token": csrf, "decision": "release"})
    assert r.status_code == 404


def test_get_on_a_post_only_route(web: Web) -> None:
    rid = web.waiting()
    web.sign_in(web.tokens.appeal)
    assert web.get(f"/review/requests/{rid}/appeal").status_code == 405


def _bad(web: Web, rid: str, data: dict[str, str], status: int = 400) -> list[str]:
    size = web.svc.ledger.size()
    r = web.post(f"/review/requests/{rid}", data)
    assert r.status_code == status, r.text[:2000]
    assert web.svc.ledger.size() == size
    assert web.svc.get(rid).stage == "decided"
    return errors_of(r)


def test_blank_odd_and_over_long_values_are_errors_on_the_field(web: Web) -> None:
    rid = web.waiting()
    csrf = web.sign_in(web.tokens.release)
    base = {"csrf_token": csrf}
    assert _bad(web, rid, base) == ["decision"]
    assert _bad(web, rid, base | {"decision": "RELEASE"}) == ["decision"]
    assert _bad(web, rid, base | {"decision": "release\n"}) == ["decision"]
    assert _bad(web, rid, base | {"decision": "release", "note": "x" * 5001}) == ["note"]
    assert _bad(web, rid, base | {"decision": "refuse", "note": "a\x00b"}) == ["note"]
    for odd in ("maybe", "yes\n", "YES", "", "true", "1"):
        got = _bad(web, rid, base | {"decision": "release", "facts-0-is_child": odd})
        assert got == ["facts-0-is_child"], odd
    # the page keeps what was typed, and says nothing of it in the error
    r = web.post(f"/review/requests/{rid}", base | {"decision": "release", "note": "x" * 5001})
    assert 'id="note-error"' in r.text
    assert "The note must be 5,000 characters or fewer" in r.text
    # facts for a person the request does not name are not the service's to hear
    data = base | {"decision": "refuse", "note": "  ", "facts-7-consent": "yes"}
    assert web.post(f"/review/requests/{rid}", data).status_code == 303
    record = web.svc.get(rid)
    assert record.outcome == "refused"
    assert record.review_note is None  # a blank note is no note


def test_a_note_of_exactly_the_limit_is_kept(web: Web) -> None:
    rid = web.waiting()
    csrf = web.sign_in(web.tokens.release)
    note = "é" * 5000
    r = web.post(
        f"/review/requests/{rid}", {"csrf_token": csrf, "decision": "release", "note": note}
    )
    assert r.status_code == 303
    assert web.svc.get(rid).review_note == note


def test_sending_the_release_twice_gets_an_already_decided_page(web: Web) -> None:
    rid = web.waiting()
    csrf = web.sign_in(web.tokens.release)
    data = {"csrf_token": csrf, "decision": "release", "note": "once"}
    first = web.post(f"/review/requests/{rid}", data)
    assert first.status_code == 303
    size = web.svc.ledger.size()
    second = web.post(f"/review/requests/{rid}", data | {"decision": "refuse"})
    assert second.status_code == 409
    assert "This request has already been decided" in second.text
    assert f'href="/review/requests/{rid}/decided"' in second.text
    assert web.svc.ledger.size() == size
    assert web.svc.get(rid).outcome == "released"
    done = web.get(first.headers["location"])
    assert done.status_code == 200
    assert "govuk-panel" in done.text and "Released" in done.text


def test_a_policy_refusal_is_not_waiting_for_review(web: Web) -> None:
    rid = web.svc.submit(refused()).id
    csrf = web.sign_in(web.tokens.release)
    page = web.get(f"/review/requests/{rid}")
    assert page.status_code == 200
    assert 'action="/review/requests/' not in page.text  # no form
    assert "No tracing for immigration offences" in page.text
    r = web.post(f"/review/requests/{rid}", {"csrf_token": csrf, "decision": "release"})
    assert r.status_code == 409
    assert "not waiting for review" in r.text
    # and the decided page sends them back to the request
    assert web.get(f"/review/requests/{rid}/decided").status_code == 303


def test_consent_counts_only_where_the_reviewer_says_so(web: Web) -> None:
    doc = example(
        subjects=[
            {"ref": "V-1", "is_child": False, "is_victim_or_witness": True, "consent": True},
            {"ref": "S-2", "is_child": False, "is_victim_or_witness": False},
        ]
    )
    rid = web.svc.submit(doc).id
    csrf = web.sign_in(web.tokens.release)
    page = web.get(f"/review/requests/{rid}")
    assert "Decision for each group of people" in page.text
    assert "V-1" in page.text and "S-2" in page.text  # the holder's reviewer sees refs
    # the victim's consent is not confirmed, and the suspect is corrected to a victim:
    # nothing may go on that record, and the service says why
    data = {"csrf_token": csrf, "decision": "release", "facts-1-is_victim_or_witness": "yes"}
    assert _bad(web, rid, data, status=409) == ["decision"]
    # confirmed: both go, and the holder's record keeps what the reviewer said
    data |= {"facts-0-consent": "yes", "facts-1-consent": "yes"}
    r = web.post(f"/review/requests/{rid}", data)
    assert r.status_code == 303, r.text[:3000]
    held = [s.held for s in web.svc.get(rid).subjects]
    assert held[0] is not None and held[0].consent and held[0].is_victim_or_witness
    assert held[1] is not None and held[1].is_victim_or_witness and held[1].consent


def test_deferral_is_decided_with_the_release_then_lifted(web: Web) -> None:
    rid = web.waiting(prejudice=True)
    csrf = web.sign_in(web.tokens.release)
    base = {"csrf_token": csrf, "decision": "release"}
    assert _bad(web, rid, base) == ["deferral"]
    assert _bad(web, rid, base | {"deferral": "later"}) == ["deferral"]
    bad_date = {"defer_until-day": "31", "defer_until-month": "2", "defer_until-year": "2027"}
    assert _bad(web, rid, base | {"deferral": "defer"} | bad_date) == ["defer_until-day"]
    far = (web.svc.clock() + timedelta(days=200)).date()
    when = {"defer_until-day": str(far.day), "defer_until-month": str(far.month)}
    when["defer_until-year"] = str(far.year)
    assert _bad(web, rid, base | {"deferral": "defer"} | when, status=422) == ["defer_until-day"]
    soon = (web.svc.clock() + timedelta(days=10)).date()
    when = {"defer_until-day": str(soon.day), "defer_until-month": f"0{soon.month}"[-2:]}
    when["defer_until-year"] = str(soon.year)
    r = web.post(f"/review/requests/{rid}", base | {"deferral": "defer"} | when)
    assert r.status_code == 303
    done = web.get(r.headers["location"]).text
    assert f"delayed until {soon.isoformat()}" in done

    # not due yet: not in the queue; on the review date it is
    assert f"/review/requests/{rid}/deferral" not in web.get("/review").text
    real_clock = web.svc.clock
    web.svc.clock = lambda: real_clock() + timedelta(days=10)
    try:
        queue = web.get("/review").text
        assert f"/review/requests/{rid}/deferral" in queue
        assert "Delayed notices due for review (1)" in queue
        page = web.get(f"/review/requests/{rid}/deferral")
        assert page.status_code == 200
        path = f"/review/requests/{rid}/deferral"
        assert errors_of(web.post(path, {"csrf_token": csrf})) == ["action"]
        assert errors_of(web.post(path, {"csrf_token": csrf, "action": "renew"})) == [
            "defer_until-day"
        ]
        r = web.post(path, {"csrf_token": csrf, "action": "lift"})
        assert r.status_code == 303
        banner = web.get(r.headers["location"]).text
        assert f"The notices for request {rid} have been sent" in banner
        assert all(n.status == "sent" for n in web.svc.get(rid).notices)
        # twice: the service says there is nothing deferred, on the form
        again = web.post(path, {"csrf_token": csrf, "action": "lift"})
        assert again.status_code == 409
    finally:
        web.svc.clock = real_clock


def test_other_holder_cannot_change_a_deferral(web: Web) -> None:
    rid = web.waiting(prejudice=True)
    web.svc.review(rid, "dpo-islington", True)
    csrf = web.sign_in(web.tokens.other_release)
    path = f"/review/requests/{rid}/deferral"
    assert web.get(path).status_code == 404
    assert web.post(path, {"csrf_token": csrf, "action": "lift"}).status_code == 404
    assert any(n.status == "deferred" for n in web.svc.get(rid).notices)


def test_an_appeal_against_a_refusal_overturned_releases_on_the_reviewers_facts(
    web: Web,
) -> None:
    rid = web.waiting()
    web.svc.review(rid, "dpo-islington", False, "not convinced")
    web.svc.appeal(rid, "requester", "The suspect's address is needed to arrest.")
    csrf = web.sign_in(web.tokens.appeal)
    assert rid in web.get("/review").text
    page = web.get(f"/review/requests/{rid}")
    assert "The suspect&#39;s address is needed to arrest." in page.text
    assert 'name="facts-0-is_child"' in page.text
    path = f"/review/requests/{rid}/appeal"
    assert errors_of(web.post(path, {"csrf_token": csrf})) == ["decision"]
    data = {"csrf_token": csrf, "decision": "overturn", "facts-0-is_child": "yes"}
    data["note"] = "ignored: appeals take no note"
    r = web.post(path, data)
    assert r.status_code == 303
    record = web.svc.get(rid)
    assert record.stage == "overturned" and record.outcome == "released"
    assert record.appeal is not None and record.appeal.reviewer == "appeals-islington"
    assert record.subjects[0].held is not None and record.subjects[0].held.is_child
    done = web.get(r.headers["location"]).text
    assert "First decision changed" in done
    again = web.post(path, {"csrf_token": csrf, "decision": "uphold"})
    assert again.status_code == 409
    assert "This appeal has already been decided" in again.text


def test_no_one_decides_an_appeal_against_their_own_release(web: Web) -> None:
    holder = "whittington-health"
    release = issue_token(web.svc, holder, "release_reviewer", "caldicott-whittington").secret
    appeal = issue_token(web.svc, holder, "appeal_reviewer", "caldicott-whittington").secret
    rid = web.svc.submit(reviewable(holder=holder)).id
    csrf = web.sign_in(release)
    assert (
        web.post(f"/review/requests/{rid}", {"csrf_token": csrf, "decision": "release"}).status_code
        == 303
    )
    web.svc.deliver_pending()
    web.svc.subject_appeal(rid, access_code(web.svc, rid), "I never agreed")
    size = web.svc.ledger.size()
    csrf = web.sign_in(appeal)
    r = web.post(f"/review/requests/{rid}/appeal", {"csrf_token": csrf, "decision": "overturn"})
    assert r.status_code == 403
    assert "someone other than the first reviewer" in r.text
    assert errors_of(r) == ["decision"]
    assert web.svc.ledger.size() == size
    assert web.svc.get(rid).stage == "appealed"


def test_the_queue_is_scoped_as_the_api_scopes_it(web: Web) -> None:
    mine = web.waiting()
    theirs = web.svc.submit(reviewable(holder="whittington-health")).id
    web.sign_in(web.tokens.release)
    queue = web.get("/review").text
    assert mine in queue and theirs not in queue
    assert "Requests to review (1)" in queue
    api = web.client.get("/api/queue", headers=web.tokens.auth("release"))
    assert [r["id"] for r in api.json()] == [mine]
    web.sign_in(web.tokens.appeal)
    queue = web.get("/review").text
    assert "Appeals (0)" in queue and "There are no appeals waiting" in queue
    assert HOLDER  # the holder both tokens belong to


def test_a_request_too_large_for_the_form_is_released_on_the_claims(web: Web) -> None:
    people = [
        {"ref": f"S-{i}", "is_child": False, "is_victim_or_witness": False} for i in range(51)
    ]
    rid = web.svc.submit(example(subjects=people)).id
    csrf = web.sign_in(web.tokens.release)
    page = web.get(f"/review/requests/{rid}").text
    assert "This request names 51 people" in page
    assert 'name="facts-0-is_child"' not in page
    data = {"csrf_token": csrf, "decision": "release", "facts-0-is_child": "yes"}
    assert web.post(f"/review/requests/{rid}", data).status_code == 303
    record = web.svc.get(rid)
    assert record.outcome == "released"
    assert all(s.held is not None and not s.held.is_child for s in record.subjects)


def test_a_refusal_keeps_the_form_as_it_was_sent(web: Web) -> None:
    rid = web.waiting(prejudice=True)
    csrf = web.sign_in(web.tokens.release)
    data = {"csrf_token": csrf, "decision": "refuse", "note": "\x07", "deferral": "no"}
    data["facts-0-is_child"] = "yes"
    r = web.post(f"/review/requests/{rid}", data)
    assert r.status_code == 400
    assert errors_of(r) == ["note"]  # the facts and deferral are not checked for a refusal
    checked = re.findall(r"<input[^>]*checked[^>]*>", r.text)
    assert any('name="facts-0-is_child"' in c and 'value="yes"' in c for c in checked)
    assert any('name="deferral"' in c and 'value="no"' in c for c in checked)
    assert any('name="decision"' in c and 'value="refuse"' in c for c in checked)


def test_what_requesters_and_appellants_wrote_is_text_never_markup(web: Web) -> None:
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    officer = {"name": evil, "role": "DC", "contact": "x@police.example"}
    rid = web.waiting(necessity=evil, officer=officer, reference="R-<b>1</b>")
    web.svc.review(rid, "dpo-islington", False, evil)
    web.svc.appeal(rid, "requester", evil)
    web.sign_in(web.tokens.appeal)
    page = web.get(f"/review/requests/{rid}").text
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "R-&lt;b&gt;1&lt;/b&gt;" in page


def test_the_appeals_queue_says_when_each_appeal_must_be_decided(web: Web) -> None:
    """Each appeal waiting shows the day it was made and the day it must be decided by
    (the auditor's APPEAL_DAYS later), and is tagged overdue once that day has passed."""
    rid = web.waiting()
    web.svc.review(rid, "dpo-islington", True)
    web.svc.deliver_pending()
    web.svc.subject_appeal(rid, access_code(web.svc, rid), "not me")
    lodged = web.svc.get(rid).appeal
    assert lodged is not None
    day = date.fromisoformat(lodged.lodged_at[:10])
    by = (day + timedelta(days=APPEAL_DAYS)).isoformat()
    web.sign_in(web.tokens.appeal)
    page = web.get("/review")
    assert page.status_code == 200
    row = page.text.split(f">{rid}</a>", 1)[1].split("</tr>", 1)[0]
    assert day.isoformat() in row and by in row
    assert "Overdue" not in row
    now = web.svc.clock()
    web.svc.clock = lambda: now + timedelta(days=APPEAL_DAYS + 1)
    row = web.get("/review").text.split(f">{rid}</a>", 1)[1].split("</tr>", 1)[0]
    assert by in row and '<strong class="govuk-tag govuk-tag--red">Overdue</strong>' in row
