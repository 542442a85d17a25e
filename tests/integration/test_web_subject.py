"""``/my-data`` in a real browser: the person with a letter sees what was shared, and appeals.

From the home page, by mouse, by keyboard alone, and with JavaScript off. Every state of
the page passes axe-core (WCAG 2.2 AA), and the access code never appears in a URL, a
cookie or the address bar.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_support import access_code, reviewable
from browser_support import Site, assert_accessible, screenshot, tab_to, visible_text
from playwright.sync_api import Page, Request, expect

from carewall import labels

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-subject")]


# Never on the person's page: the requester's reference, the person's own reference in the
# holder's records, the officers' names, the reviewer's note and the reviewer's id.
PRIVATE = ["ISL-CRN-88213", "DC J. Smith", "Insp. R. Khan", "address confirmed", "dpo-islington"]
SHARED = [labels.label("category", c) for c in ("name", "address")]


def fresh(site: Site, n: int) -> tuple[str, str]:
    """Another released request about one person, and the code in their letter."""
    got = site.service.submit(reviewable(reference=f"MPS-2026-09{n:02d}"))
    site.service.review(got.id, "dpo-islington", True)
    site.service.deliver_pending()
    return got.id, access_code(site.service, got.id)


class Urls:
    """Every URL the page asked for, and the address bar after each step."""

    def __init__(self, page: Page) -> None:
        self.seen: list[str] = []
        page.on("request", self._saw)

    def _saw(self, request: Request) -> None:
        self.seen.append(request.url)

    def assert_never_hold(self, page: Page, secret: str) -> None:
        assert self.seen, "no requests were recorded"
        assert all(secret not in url for url in self.seen)
        assert secret not in page.url
        assert all(secret not in c["value"] for c in page.context.cookies())


@pytest.fixture
def urls(page: Page) -> Iterator[Urls]:
    yield Urls(page)


def enter(page: Page, request_id: str, code: str) -> None:
    page.get_by_label("Request ID").fill(request_id)
    page.get_by_label("Access code").fill(code)
    page.get_by_role("button", name="Continue").click()


def assert_no_private_data(page: Page, site: Site, code: str) -> None:
    text = visible_text(page)
    for private in [*PRIVATE, site.reference]:
        assert private not in text
        assert private not in page.content()
    assert code not in text  # only in the appeal form's hidden field


def test_from_the_home_page_to_an_appeal(page: Page, site: Site, urls: Urls) -> None:
    page.goto(site.base + "/")
    page.get_by_role("link", name="Your data").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("See what was shared about you")
    assert_accessible(page)
    screenshot(page, "my-data-form")

    enter(page, site.released, site.code)
    expect(page.get_by_role("heading", level=1)).to_have_text("What was shared about you")
    text = visible_text(page)
    for shared in SHARED:
        assert shared in text
    assert labels.label("purpose", "prevention_detection_of_crime") in text
    assert "Islington Council shared information about you with" in text
    assert "This service checked that this sharing is recorded in the public log" in text
    assert "It also checked that the request recorded in the log includes you" in text
    assert "could not confirm" not in text
    assert_no_private_data(page, site, site.code)
    assert_accessible(page)
    page.get_by_text("See the proof and check it yourself").click()
    expect(page.get_by_text("How to check it")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "my-data-result")

    page.get_by_label("Why do you want to appeal?").fill("The address is not mine.")
    page.get_by_role("button", name="Send appeal").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Appeal sent")
    expect(page.get_by_role("heading", name="What happens next")).to_be_visible()
    assert "an appeal reviewer" in visible_text(page)
    assert_accessible(page)
    screenshot(page, "my-data-appeal-sent")
    urls.assert_never_hold(page, site.code)
    appeal = site.service.get(site.released).appeal
    assert appeal is not None and appeal.grounds == "The address is not mine."


def test_wrong_details_show_the_error_summary(page: Page, site: Site, urls: Urls) -> None:
    page.goto(site.base + "/my-data")
    page.get_by_role("button", name="Continue").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_be_focused()  # GOV.UK Frontend moves focus to the summary
    expect(summary).to_contain_text("Enter the request ID from your letter")
    expect(summary).to_contain_text("Enter the access code from your letter")
    assert_accessible(page)

    enter(page, site.released, "not-the-code")
    expect(summary).to_contain_text("The request ID and access code do not match")
    expect(page).to_have_title("Error: See what was shared about you – carewall")
    assert_accessible(page)
    screenshot(page, "my-data-error")
    summary.get_by_role("link").click()
    expect(page.get_by_label("Request ID")).to_be_focused()
    wrong = visible_text(page)

    # A refused request never had a letter: the same answer, nothing about whether it exists.
    enter(page, site.refused, site.code)
    expect(summary).to_contain_text("The request ID and access code do not match")
    assert visible_text(page) == wrong.replace(site.released, site.refused)
    urls.assert_never_hold(page, site.code)


def test_an_appeal_already_made_shows_where_it_stands(page: Page, site: Site) -> None:
    page.goto(site.base + "/my-data")
    enter(page, site.appealed, site.appeal_code)
    expect(page.get_by_role("heading", name="Your appeal")).to_be_visible()
    text = visible_text(page)
    assert "Waiting for a decision" in text and "I was the victim, not a suspect" in text
    expect(page.get_by_label("Why do you want to appeal?")).to_have_count(0)
    assert_accessible(page)


def test_the_whole_journey_by_keyboard_alone(page: Page, site: Site, urls: Urls) -> None:
    request_id, code = fresh(site, 1)
    page.goto(site.base + "/")
    tab_to(page, "a.govuk-service-navigation__link[href='/my-data']")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("See what was shared about you")
    tab_to(page, "#request-id")
    page.keyboard.type(request_id)
    tab_to(page, "#code")
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("What was shared about you")
    tab_to(page, "#grounds")
    page.keyboard.type("I did not agree to this.")
    tab_to(page, "button:has-text('Send appeal')")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Appeal sent")
    urls.assert_never_hold(page, code)
    assert site.service.get(request_id).appeal is not None


def test_the_journey_without_javascript(page_without_js: Page, site: Site) -> None:
    page = page_without_js  # the same steps, on a page without JavaScript
    request_id, code = fresh(site, 2)
    urls = Urls(page)
    page.goto(site.base + "/")
    page.get_by_role("link", name="Your data").first.click()
    page.get_by_role("button", name="Continue").click()  # blank: the server says so
    expect(page.locator(".govuk-error-summary")).to_contain_text(
        "Enter the request ID from your letter"
    )
    enter(page, request_id, code)
    text = visible_text(page)
    for shared in SHARED:
        assert shared in text
    assert "This service checked that this sharing is recorded in the public log" in text
    page.get_by_role("button", name="Send appeal").click()  # blank grounds
    expect(page.locator(".govuk-error-summary")).to_contain_text("Enter why you want to appeal")
    page.get_by_label("Why do you want to appeal?").fill("This is about someone else.")
    page.get_by_role("button", name="Send appeal").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Appeal sent")
    urls.assert_never_hold(page, code)
    assert site.service.get(request_id).appeal is not None
