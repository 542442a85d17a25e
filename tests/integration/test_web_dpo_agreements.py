"""The DPO's agreements page without a browser (FastAPI's TestClient).

Agreements are made with the service's own functions (:mod:`agreement_support`) on day D,
and looked at later by moving the service's clock on (``svc.clock``), writing nothing: the
page judges by the service's clock, so it warns before the log's own date (which the
statistics and the auditor use) moves on. Checked here: each state's tag and what the DPO
is told to do, the counts, scoping as ``/api/agreements`` scopes it (another holder's
agreement is a 404 like a missing one), the roles, the withdraw form (CSRF, scope, once),
odd names escaped, and nothing about a request or a person on the page.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from agreement_support import STATES, agreement, build_agreements
from api_support import Tokens, api, reviewable
from fastapi.testclient import TestClient
from httpx import Response

from carewall.api.admin import issue_token
from carewall.service import Service
from carewall.service.agreement_records import get_agreement
from carewall.web.dpo_common import day

HTML = {"accept": "text/html"}
OTHER = "whittington-health"
ODD_NAME = 'Police <script>alert(1)</script> & "Co"'
ODD_TITLE = '<img src=x onerror=alert(2)> "ISA" & more'


@dataclass
class World:
    client: TestClient
    svc: Service
    tokens: Tokens
    now: datetime  # day D: every entry was written then
    released: str  # the request released under the agreements
    other_admin: str
    empty_admin: str  # an organisation with no agreements

    def sign_in(self, token: str) -> Response:
        self.client.cookies.clear()
        page = self.client.get("/sign-in", headers=HTML)
        return self.client.post(
            "/sign-in",
            data={"csrf_token": csrf_of(page), "token": token},
            headers=HTML,
            follow_redirects=False,
        )

    def get(self, path: str) -> Response:
        return self.client.get(path, headers=HTML, follow_redirects=False)

    def post(self, path: str, csrf: str | None) -> Response:
        data = {} if csrf is None else {"csrf_token": csrf}
        return self.client.post(path, data=data, headers=HTML, follow_redirects=False)

    @contextmanager
    def at(self, days: int) -> Iterator[None]:
        """The service's clock ``days`` after D (nothing is written meanwhile)."""
        self.svc.clock = lambda: self.now + timedelta(days=days)
        try:
            yield
        finally:
            self.svc.clock = lambda: self.now

    def d(self, days: int) -> str:
        """D plus ``days`` as the page writes a date."""
        return day((self.now + timedelta(days=days)).date().isoformat())


def csrf_of(page: Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def row_of(page: Response, agreement_id: str) -> str:
    """The table row of ``agreement_id`` (its HTML)."""
    for row in page.text.split('<tr class="govuk-table__row">')[1:]:
        if f'<span class="cw-id">{agreement_id}</span>' in row:
            return row.split("</tr>", 1)[0]
    raise AssertionError(f"no row for {agreement_id}")


def tag_of(row: str) -> tuple[str, str]:
    """(text, colour class or "") of the row's status tag."""
    found = re.search(r'<strong class="govuk-tag ?([^"]*)">(.*?)</strong>', row, re.S)
    assert found is not None, row
    return text_of(found.group(2)), found.group(1).removeprefix("govuk-tag--")


def ids_on(page: Response) -> list[str]:
    return re.findall(r'<span class="cw-id">([a-z0-9-]+)</span>', page.text)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("dpo-agreements")
    with api(f"sqlite:///{tmp / 'cw.db'}", tmp) as (client, svc, tokens):
        client.base_url = "https://testserver"  # so the Secure session cookie is sent back
        now = datetime.now(UTC)
        released = build_agreements(svc, now)
        svc.add_organisation("odd-police", ODD_NAME, "police")
        start = now.date() - timedelta(days=3)
        svc.register_agreement(agreement("isa-odd", start, title=ODD_TITLE, recipient="odd-police"))
        theirs = agreement("wh-isa", now.date() - timedelta(days=30), holder=OTHER)
        svc.register_agreement(theirs)
        yield World(
            client=client,
            svc=svc,
            tokens=tokens,
            now=now,
            released=released,
            other_admin=issue_token(svc, OTHER, "admin").secret,
            empty_admin=issue_token(svc, "dwp", "admin").secret,
        )


@pytest.fixture
def dpo(world: World) -> World:
    assert world.sign_in(world.tokens.admin).headers["location"] == "/dpo/requests"
    return world


# ----- each state, on the service's clock ---------------------------------------------------


def expected(w: World, days: int) -> dict[str, tuple[str, str]]:
    late = days > 30
    return {
        "isa-active": ("Registered", ""),
        "isa-ending": ("Ended — not withdrawn", "red")
        if late
        else (f"Ended — withdraw by {w.d(30)}", "orange"),
        "isa-ended-empty": ("Ended", "grey"),
        "isa-withdrawn": ("Destruction overdue", "red")
        if late
        else (f"Withdrawn — destruction due {w.d(30)}", "yellow"),
        "isa-withdrawn-empty": ("Withdrawn", "grey"),
        "isa-destroyed": ("Destroyed", "green"),
        "isa-refused": ("Refused", "grey"),
    }


@pytest.mark.parametrize("days", [10, 30, 31, 400])
def test_each_agreement_has_the_tag_of_its_state(dpo: World, days: int) -> None:
    with dpo.at(days):
        page = dpo.get("/dpo/agreements")
    assert page.status_code == 200
    for agreement_id, tag in expected(dpo, days).items():
        assert tag_of(row_of(page, agreement_id)) == tag, agreement_id


def test_on_its_last_day_an_agreement_is_still_registered(dpo: World) -> None:
    """Day D: isa-ending ends today, so nothing is owed yet; the release is under it."""
    page = dpo.get("/dpo/agreements")
    assert tag_of(row_of(page, "isa-ending")) == ("Registered", "")
    assert f"What needs doing, as of {dpo.d(0)}" in text_of(page.text)


def test_what_to_do_next_for_each_state_that_owes_something(dpo: World) -> None:
    with dpo.at(10):
        page = dpo.get("/dpo/agreements")
    ending = row_of(page, "isa-ending")
    assert f"Withdraw it by {dpo.d(30)}" in text_of(ending)
    assert 'href="/dpo/agreements/isa-ending/withdraw"' in ending
    withdrawn = text_of(row_of(page, "isa-withdrawn"))
    assert "carewall agreement letter isa-withdrawn" in withdrawn
    assert "carewall agreement destroyed isa-withdrawn --certificate FILE" in withdrawn
    for quiet in ("isa-active", "isa-ended-empty", "isa-withdrawn-empty", "isa-destroyed",
                  "isa-refused"):  # fmt: skip
        row = row_of(page, quiet)
        assert text_of(row).endswith("Nothing"), quiet
        assert "/withdraw" not in row, quiet
    with dpo.at(31):
        page = dpo.get("/dpo/agreements")
    late = row_of(page, "isa-ending")
    assert f"Withdraw it now: it was due to be withdrawn by {dpo.d(30)}" in text_of(late)
    assert 'href="/dpo/agreements/isa-ending/withdraw"' in late
    overdue = text_of(row_of(page, "isa-withdrawn"))
    assert f"destruction was due by {dpo.d(30)}" in overdue
    assert "carewall agreement destroyed isa-withdrawn --certificate FILE" in overdue


def test_the_counts_at_the_top_and_the_order(dpo: World) -> None:
    with dpo.at(10):
        page = dpo.get("/dpo/agreements")
    owing = text_of(page.text.split('id="owing"', 1)[1].split("</ul>", 1)[0])
    assert "0 agreements not withdrawn in time" in owing
    assert "1 agreement to withdraw" in owing
    assert "0 destructions overdue" in owing
    assert "1 agreement waiting for the recipient's deletion certificate" in owing
    assert "fails" not in text_of(page.text)  # no warning: nothing fails the audit yet
    assert ids_on(page)[:2] == ["isa-ending", "isa-withdrawn"]  # what needs action first
    assert "8 agreements, those needing action first" in text_of(page.text)
    with dpo.at(31):
        page = dpo.get("/dpo/agreements")
    owing = text_of(page.text.split('id="owing"', 1)[1].split("</ul>", 1)[0])
    assert "1 agreement not withdrawn in time" in owing
    assert "0 agreements to withdraw" in owing
    assert "1 destruction overdue" in owing
    assert "1 agreement ended with data shared under it, and was not withdrawn within 30 days" in (
        text_of(page.text)
    )
    assert ids_on(page)[:2] == ["isa-ending", "isa-withdrawn"]


def test_the_page_shows_no_request_and_no_person(dpo: World) -> None:
    with dpo.at(31):
        page = dpo.get("/dpo/agreements")
        confirm = dpo.get("/dpo/agreements/isa-ending/withdraw")
    record = dpo.svc.get(dpo.released)
    private = [dpo.released, record.reference, "ISL-CRN-88213", "DC J. Smith", "Insp. R. Khan"]
    for text in private:
        assert text not in page.text and text not in confirm.text, text
    # What the page does name: the parties, the purpose (as words), dates and counts.
    assert "Metropolitan Police Service" in text_of(row_of(page, "isa-active"))
    assert "Preventing or detecting crime" in text_of(row_of(page, "isa-active"))


def test_the_withdraw_page_counts_what_went_as_the_withdrawal_will(dpo: World) -> None:
    with dpo.at(10):
        page = dpo.get("/dpo/agreements/isa-ending/withdraw")
        empty = dpo.get("/dpo/agreements/isa-ended-empty/withdraw")
    assert page.status_code == 200
    assert "Shared under it so far 1 time, about 1 person: Address, Name" in text_of(page.text)
    assert "asked to destroy what it received under the agreement within 30 days" in page.text
    assert "Crime information-sharing agreement" in page.text  # the holder's own title
    assert "Shared under it so far Nothing" in text_of(empty.text)
    assert "no destruction will be asked for" in empty.text
    for moved_on in ("isa-withdrawn", "isa-destroyed", "isa-refused"):
        r = dpo.get(f"/dpo/agreements/{moved_on}/withdraw")
        assert r.status_code == 409 and "cannot be withdrawn" in r.text, moved_on


def test_the_escaped_name_and_title(dpo: World) -> None:
    page = dpo.get("/dpo/agreements")
    confirm = dpo.get("/dpo/agreements/isa-odd/withdraw")
    for r in (page, confirm):
        assert r.status_code == 200
        assert "<script>alert" not in r.text and "<img src=x" not in r.text
        assert "Police &lt;script&gt;alert(1)&lt;/script&gt; &amp; " in r.text
        assert "&lt;img src=x onerror=alert(2)&gt;" in r.text
    assert text_of(row_of(page, "isa-odd")).startswith(f"isa-odd {ODD_TITLE} {ODD_NAME}")


# ----- scope and roles ------------------------------------------------------------------------


def test_another_holders_dpo_sees_none_of_these_agreements(world: World) -> None:
    assert world.sign_in(world.other_admin).status_code == 303
    page = world.get("/dpo/agreements")
    assert ids_on(page) == ["wh-isa"]
    assert "1 agreement, those needing action first" in text_of(page.text)
    for agreement_id in (*STATES, "isa-odd"):
        assert agreement_id not in page.text
        r = world.get(f"/dpo/agreements/{agreement_id}/withdraw")
        assert r.status_code == 404 and "Page not found" in r.text, agreement_id
    r = world.post("/dpo/agreements/isa-active/withdraw", csrf_of(world.get("/sign-out")))
    assert r.status_code == 404
    assert get_agreement(world.svc, "isa-active").state == "registered"


def test_this_holders_dpo_does_not_see_the_other_holders_agreement(dpo: World) -> None:
    assert "wh-isa" not in dpo.get("/dpo/agreements").text
    theirs = dpo.get("/dpo/agreements/wh-isa/withdraw")
    missing = dpo.get("/dpo/agreements/no-such-isa/withdraw")
    assert theirs.status_code == missing.status_code == 404
    same = [re.sub(r'nonce="[^"]+"', "", r.text) for r in (theirs, missing)]
    assert same[0] == same[1]  # the same page: an id reveals nothing
    csrf = csrf_of(dpo.get("/sign-out"))
    assert dpo.post("/dpo/agreements/wh-isa/withdraw", csrf).status_code == 404
    assert get_agreement(dpo.svc, "wh-isa").state == "registered"


@pytest.mark.parametrize(
    "bad",
    ["ISA-ACTIVE", "isa-active%20", "%20isa-active", "isa_active", "is%D0%B0-active", "x" * 300,
     "%00", "isa-active%0A", "-isa-active"],
)  # fmt: skip
def test_odd_agreement_ids_are_not_found(dpo: World, bad: str) -> None:
    r = dpo.get(f"/dpo/agreements/{bad}/withdraw")
    assert r.status_code == 404 and "Traceback" not in r.text


def test_an_organisation_with_no_agreements(world: World) -> None:
    assert world.sign_in(world.empty_admin).status_code == 303
    page = world.get("/dpo/agreements")
    assert page.status_code == 200
    assert "Department for Work and Pensions has no data-sharing agreements" in page.text
    assert "0 agreements to withdraw" in text_of(page.text)
    assert "govuk-table" not in page.text and ids_on(page) == []


@pytest.mark.parametrize("who", ["release", "appeal", "other_release"])
def test_a_reviewer_cannot_see_or_use_the_agreements_page(world: World, who: str) -> None:
    assert world.sign_in(getattr(world.tokens, who)).status_code == 303
    for path in ("/dpo/agreements", "/dpo/agreements/isa-active/withdraw"):
        r = world.get(path)
        assert r.status_code == 403, path
        assert "You cannot do that" in r.text and "Sign in as admin" in r.text
    csrf = csrf_of(world.get("/sign-out"))
    assert world.post("/dpo/agreements/isa-active/withdraw", csrf).status_code == 403
    assert get_agreement(world.svc, "isa-active").state == "registered"


def test_signed_out_or_with_an_api_token_is_asked_to_sign_in(world: World) -> None:
    world.client.cookies.clear()
    for token in (None, world.tokens.requester, world.tokens.admin):
        headers = HTML if token is None else {**HTML, "authorization": f"Bearer {token}"}
        for path in ("/dpo/agreements", "/dpo/agreements/isa-active/withdraw"):
            r = world.client.get(path, headers=headers, follow_redirects=False)
            assert r.status_code == 401, (path, token is None)
            assert 'href="/sign-in"' in r.text and "isa-ending" not in r.text
    r = world.post("/dpo/agreements/isa-active/withdraw", "forged")
    assert r.status_code == 403
    assert get_agreement(world.svc, "isa-active").state == "registered"


def test_get_only_routes_refuse_a_post(dpo: World) -> None:
    r = dpo.client.post("/dpo/agreements", headers=HTML, data={"x": "y"})
    assert r.status_code == 405 and "Traceback" not in r.text


# ----- withdrawing from the page --------------------------------------------------------------


def test_withdraw_an_ended_agreement_from_the_page(tmp_path: Path) -> None:
    with api(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path) as (client, svc, tokens):
        client.base_url = "https://testserver"
        now = datetime.now(UTC)
        svc.clock = lambda: now
        svc.register_agreement(agreement("isa-form", now.date() - timedelta(days=30), now.date()))
        svc.submit(reviewable())  # waiting for review: not a release
        svc.review(svc.submit(reviewable()).id, "dpo-islington", True)
        w = World(client, svc, tokens, now, "", "", "")
        assert w.sign_in(tokens.admin).status_code == 303
        with w.at(10):  # within the 30 days after its end: on time
            page = w.get("/dpo/agreements")
            assert tag_of(row_of(page, "isa-form")) == (f"Ended — withdraw by {w.d(30)}", "orange")
            confirm = w.get("/dpo/agreements/isa-form/withdraw")
            assert "1 time, about 1 person: Address, Name" in text_of(confirm.text)
            size = svc.ledger.size()
            for forged in (None, "", "x" * 43):
                assert w.post("/dpo/agreements/isa-form/withdraw", forged).status_code == 403
            assert svc.ledger.size() == size  # nothing written without the form's token
            done = w.post("/dpo/agreements/isa-form/withdraw", csrf_of(confirm))
            assert done.status_code == 303
            assert done.headers["location"] == "/dpo/agreements?withdrawn=isa-form"
            page = w.get(done.headers["location"])
            assert "Agreement isa-form is withdrawn" in page.text
            assert f"must destroy what it received under it by {w.d(40)}" in page.text
            assert "carewall agreement letter isa-form" in page.text
            row = row_of(page, "isa-form")
            assert tag_of(row) == (f"Withdrawn — destruction due {w.d(40)}", "yellow")
            again = w.post("/dpo/agreements/isa-form/withdraw", csrf_of(confirm))
            assert again.status_code == 409 and "That cannot be done now" in again.text
            (entry,) = [json.loads(b) for b in svc.ledger.entries(size, svc.ledger.size())]
        assert (entry["kind"], entry["action"], entry["agreement"]) == (
            "agreement", "withdrawn", "isa-form",
        )  # fmt: skip
        assert (entry["releases"], entry["released"]) == (1, ["address", "name"])
        assert entry["due"] == (now.date() + timedelta(days=40)).isoformat()
        # a banner for an agreement that is not withdrawn, or not ours, is not shown
        for other in ("isa-none", "wh-isa", "<b>x</b>"):
            assert "is withdrawn" not in w.get(f"/dpo/agreements?withdrawn={other}").text
