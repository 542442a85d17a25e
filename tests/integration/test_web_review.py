"""The reviewers' pages in a real browser: sign in, the queue, a request, release, refuse,
appeals; by keyboard alone and without JavaScript; accessible (axe, WCAG 2.2 AA); and the
session: its cookie's flags, signing out, and a revoked token.

The site is shared by the module, so every test that changes something decides a request
of its own (``_waiting``), and none depends on another having run.
"""

from __future__ import annotations

import re

import pytest
from api_support import HOLDER, reviewable
from browser_support import Site, assert_accessible, screenshot, tab_to, visible_text
from playwright.sync_api import Locator, Page, expect

from carewall.api.admin import issue_token
from carewall.api.auth import revoke_token

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-review")]


def _waiting(site: Site, reference: str, **changes: object) -> str:
    got = site.service.submit(reviewable(reference=reference, **changes))
    assert got.outcome == "review"
    return got.id


def sign_in(page: Page, site: Site, token: str) -> None:
    page.goto(site.base + "/sign-in")
    page.fill("#token", token)
    page.get_by_role("button", name="Sign in").click()


def test_release_journey(page: Page, site: Site) -> None:
    rid = _waiting(site, "MPS-2026-0601")
    sign_in(page, site, site.tokens.release)
    expect(page).to_have_url(re.compile(r"/review$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Requests waiting for your review")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=rid))
    expect(row).to_contain_text("Metropolitan Police Service")
    expect(page.get_by_role("link", name=site.waiting)).to_be_visible()
    assert_accessible(page)
    screenshot(page, "review-queue")

    page.get_by_role("link", name=rid).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Review this request")
    decision = page.get_by_role("table", name="Decision for each kind of information")

    def row(category: str) -> Locator:
        return decision.get_by_role("row").filter(
            has=page.get_by_role("rowheader", name=category, exact=True)
        )

    expect(row("Address")).to_contain_text("Can be released")
    expect(row("Financial information")).to_contain_text("Refused")
    expect(row("Financial information")).to_contain_text("No rule allows it")
    expect(decision).to_contain_text("Police: details of a suspect")
    expect(page.get_by_text("ISL-CRN-88213")).to_be_visible()  # the holder's reviewer sees it
    assert_accessible(page)
    screenshot(page, "review-request")

    # sent without a choice: the error summary links to the field
    page.get_by_role("button", name="Confirm decision").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Select whether to release what the policy permits or refuse")
    expect(page).to_have_title(re.compile("^Error: "))
    assert_accessible(page)
    summary.get_by_role("link").first.click()
    expect(page.locator("#decision")).to_be_focused()

    page.get_by_role("group", name="Is person 1 a child?").get_by_label("Yes").check()
    page.get_by_label("Release what the policy permits").check()
    page.get_by_label("Note for the record (optional)").fill("Address checked against our file.")
    page.get_by_role("button", name="Confirm decision").click()

    panel = page.locator(".govuk-panel")
    expect(panel).to_contain_text("Released")
    expect(panel).to_contain_text(re.compile(r"Public log entry \d+"))
    text = visible_text(page)
    assert "You released Address, Name to Metropolitan Police Service" in text
    assert "Each person whose information was released is sent a notice" in text
    assert_accessible(page)
    screenshot(page, "review-done")

    record = site.service.get(rid)
    assert record.outcome == "released" and record.reviewer == "dpo-islington"
    assert record.review_note == "Address checked against our file."
    held = record.subjects[0].held
    assert held is not None and held.is_child and not held.consent


def test_refuse_journey(page: Page, site: Site) -> None:
    rid = _waiting(site, "MPS-2026-0602", prejudice=True)
    sign_in(page, site, site.tokens.release)
    page.goto(f"{site.base}/review/requests/{rid}")
    expect(page.get_by_label("Delay telling them until a review date")).to_be_visible()
    assert_accessible(page)  # with the deferral choice, which a refusal leaves unused
    page.get_by_label("Refuse").check()
    page.get_by_role("button", name="Confirm decision").click()
    expect(page.locator(".govuk-panel")).to_contain_text("Refused")
    assert "You refused the request. Nothing was sent" in visible_text(page)
    assert site.service.get(rid).outcome == "refused"
    # the refused request has left the queue
    page.goto(site.base + "/review")
    expect(page.get_by_role("link", name=rid)).to_have_count(0)


def test_appeal_reviewer_decides_the_appeal(page: Page, site: Site) -> None:
    sign_in(page, site, site.tokens.appeal)
    expect(page.get_by_role("heading", level=1)).to_have_text("Appeals waiting for a decision")
    expect(page.get_by_role("columnheader", name="Decide by")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name=site.appealed).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Decide this appeal")
    expect(page.get_by_text("I was the victim, not a suspect")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "review-appeal")
    page.get_by_label("Keep the first decision").check()
    page.get_by_role("button", name="Confirm decision").click()
    expect(page.locator(".govuk-panel")).to_contain_text("First decision kept")
    assert_accessible(page)
    record = site.service.get(site.appealed)
    assert record.stage == "upheld"
    assert record.appeal is not None and record.appeal.reviewer == "appeals-islington"


def test_two_peoples_appeals_are_shown_and_decided_in_turn(page: Page, site: Site) -> None:
    """Both people a release named appeal it: the appeal reviewer reads both, decides the
    first lodged, and the second is then the one to decide."""
    people = [
        {"ref": f"TEST-{k}", "is_child": False, "is_victim_or_witness": False} for k in (1, 2)
    ]
    rid = site.service.submit(reviewable(reference="MPS-2026-0611", subjects=people)).id
    site.service.review(rid, "dpo-islington", True)
    codes = [
        found.group(1)
        for m in site.service.outbox()
        if rid in m["body"] and (found := re.search(r"Your access code:\s+(\S+)", m["body"]))
    ]
    site.service.subject_appeal(rid, codes[0], "Appeal of the first person")
    site.service.subject_appeal(rid, codes[1], "Appeal of the second person")
    sign_in(page, site, site.tokens.appeal)
    page.goto(f"{site.base}/review/requests/{rid}")
    expect(page.get_by_role("heading", level=2, name="The appeals")).to_be_visible()
    expect(page.get_by_role("heading", name="Appeal 1 of 2 (to decide now)")).to_be_visible()
    expect(page.get_by_text("Appeal of the second person")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Keep the first decision").check()
    page.get_by_role("button", name="Confirm decision").click()
    expect(page.locator(".govuk-panel")).to_contain_text("First decision kept")
    page.goto(f"{site.base}/review/requests/{rid}")
    expect(page.get_by_role("heading", name="Appeal 2 of 2 (to decide now)")).to_be_visible()
    record = site.service.get(rid)
    assert (record.stage, [a.result for a in record.appeals]) == ("appealed", ["upheld", None])


def test_release_by_keyboard_alone(page: Page, site: Site) -> None:
    rid = _waiting(site, "MPS-2026-0603")
    page.goto(site.base + "/sign-in")
    tab_to(page, "#token")
    page.keyboard.type(site.tokens.release)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Requests waiting for your review")
    tab_to(page, f'a[href="/review/requests/{rid}"]')
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Review this request")
    tab_to(page, "#decision")  # the first choice: release
    page.keyboard.press("Space")
    expect(page.locator("#decision")).to_be_checked()
    tab_to(page, "#note")
    page.keyboard.type("Decided by keyboard.")
    tab_to(page, "form button.govuk-button")
    page.keyboard.press("Enter")
    expect(page.locator(".govuk-panel")).to_contain_text("Released")
    assert site.service.get(rid).review_note == "Decided by keyboard."


def test_release_without_javascript(page_without_js: Page, site: Site) -> None:
    p = page_without_js
    rid = _waiting(site, "MPS-2026-0604", prejudice=True)
    sign_in(p, site, site.tokens.release)
    p.goto(f"{site.base}/review/requests/{rid}")
    p.get_by_label("Release what the policy permits").check()
    p.get_by_label("Tell them now").check()
    p.get_by_role("button", name="Confirm decision").click()
    expect(p.locator(".govuk-panel")).to_contain_text("Released")
    record = site.service.get(rid)
    assert record.outcome == "released"
    assert record.notices and all(n.status == "sent" for n in record.notices)


def test_session_cookie_is_httponly_secure_and_samesite(page: Page, site: Site) -> None:
    sign_in(page, site, site.tokens.release)
    expect(page).to_have_url(re.compile(r"/review$"))
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["carewall_session"]
    assert session["httpOnly"] is True
    assert session["secure"] is True
    assert session["sameSite"] in ("Lax", "Strict")
    assert page.evaluate("document.cookie").find("carewall_session") == -1


def test_signing_out_ends_the_session(page: Page, site: Site) -> None:
    sign_in(page, site, site.tokens.release)
    page.goto(f"{site.base}/review/requests/{site.waiting}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Review this request")
    page.get_by_role("link", name="Sign out").click()
    page.get_by_role("button", name="Sign out").click()
    # Each step waits for its page: under load Chromium may still be swapping the page in
    # when the next history step is asked for ("Not attached to an active page").
    page.wait_for_load_state("load")
    page.go_back()
    page.wait_for_load_state("load")
    page.go_back()  # back to the request page: it is not shown again
    expect(page.get_by_role("heading", level=1)).to_have_text("You need to sign in")
    assert "ISL-CRN-88213" not in visible_text(page)
    page.goto(site.base + "/review")
    expect(page.get_by_role("heading", level=1)).to_have_text("You need to sign in")
    page.get_by_role("main").get_by_role("link", name="Sign in").click()
    expect(page.get_by_label("Your token")).to_be_visible()


def test_a_revoked_tokens_session_stops_at_once(page: Page, site: Site) -> None:
    issued = issue_token(site.service, HOLDER, "release_reviewer", "dpo-islington")
    sign_in(page, site, issued.secret)
    expect(page.get_by_role("heading", level=1)).to_have_text("Requests waiting for your review")
    revoke_token(site.service.store, issued.info.id)
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("You need to sign in")
    page.goto(f"{site.base}/review/requests/{site.waiting}")
    expect(page.get_by_role("heading", level=1)).to_have_text("You need to sign in")


def test_lift_a_delay_on_the_notices(page: Page, site: Site) -> None:
    rid = _waiting(site, "MPS-2026-0605", prejudice=True)
    site.service.review(rid, "dpo-islington", True)
    sign_in(page, site, site.tokens.release)
    page.goto(f"{site.base}/review/requests/{rid}")
    page.get_by_role("link", name="Lift or renew the delay on the notices").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Lift or renew the delay")
    assert_accessible(page)
    page.get_by_label("No, keep delaying until a new review date").check()
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Enter the new review date")
    assert_accessible(page)
    page.get_by_label("Yes, send the notices now").check()
    page.get_by_role("button", name="Confirm").click()
    banner = page.locator(".govuk-notification-banner")
    expect(banner).to_contain_text(f"The notices for request {rid} have been sent")
    assert all(n.status == "sent" for n in site.service.get(rid).notices)


def test_a_decision_sent_from_a_stale_page_gets_a_clear_page(page: Page, site: Site) -> None:
    rid = _waiting(site, "MPS-2026-0606")
    sign_in(page, site, site.tokens.release)
    page.goto(f"{site.base}/review/requests/{rid}")
    other = page.context.new_page()  # a second tab, which decides first
    other.goto(f"{site.base}/review/requests/{rid}")
    other.get_by_label("Refuse").check()
    other.get_by_role("button", name="Confirm decision").click()
    expect(other.locator(".govuk-panel")).to_contain_text("Refused")
    other.close()

    page.get_by_label("Release what the policy permits").check()
    page.get_by_role("button", name="Confirm decision").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "This request has already been decided"
    )
    assert "your decision was not recorded" in visible_text(page)
    assert_accessible(page)
    assert site.service.get(rid).outcome == "refused"
    page.go_back()  # the form again, fetched afresh: it is no longer offered
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Request from Metropolitan Police Service"
    )
    expect(page.get_by_role("button", name="Confirm decision")).to_have_count(0)
    assert_accessible(page)
