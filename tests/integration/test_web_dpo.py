"""The data protection officer's pages in a real browser: sign in with the holder's admin
token, search the register and page through it, open a record and its events, download
the CSV, print a letter (the print stylesheet hides everything but the letter) and read
the register; every page accessible (axe, WCAG 2.2 AA) and screenshotted.

The site is shared by the module; the requests added here (``many``) are refused ones with
references of their own, so the site's own reference still finds exactly one request.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from api_support import HOLDER, refused
from browser_support import Site, assert_accessible, screenshot, visible_text
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-dpo")]


EXTRA = 26  # with the site's own, more than one page of 25


@pytest.fixture(scope="module")
def many(site: Site) -> Site:
    for i in range(EXTRA):
        site.service.submit(refused(reference=f"DPO-PAGE-{i:02}"))
    return site


def sign_in(page: Page, site: Site) -> None:
    page.goto(site.base + "/sign-in")
    page.fill("#token", site.tokens.admin)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dpo/requests$"))


def test_search_by_reference_and_open_the_record(page: Page, many: Site) -> None:
    site = many
    sign_in(page, site)
    held = len(site.service.list_requests(holder=HOLDER))
    expect(page.get_by_role("heading", level=1)).to_have_text("Requests register")
    expect(page.locator("#results")).to_have_text(f"{held} requests held")
    assert_accessible(page)
    screenshot(page, "dpo-requests")

    page.fill("#reference", site.reference)
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"reference=MPS-2026-0451"))
    expect(page.locator("#results")).to_have_text("1 request matches")
    rows = page.get_by_role("table").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Metropolitan Police Service")
    expect(rows.first).to_contain_text("Released")
    assert_accessible(page)

    rows.first.get_by_role("link", name=site.released).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Request {site.released}")
    expect(page.get_by_text(site.reference, exact=True)).to_be_visible()
    events = page.get_by_role(
        "table", name="Everything that happened to this request, oldest first"
    )
    for text in ("Request received", "Decided by the policy", "Reviewed by a named person",
                 "Data sent"):  # fmt: skip
        expect(events).to_contain_text(text)
    record = site.service.get(site.released)
    for event in record.events:
        if event.log_index is not None:
            expect(events).to_contain_text(f"{event.log_index:,}")
    decision = page.get_by_role("table", name="What the policy decided for each kind of data")
    expect(decision).to_contain_text("Police: details of a suspect")
    text = visible_text(page)
    assert "ISL-CRN-88213" not in text and "DC J. Smith" not in text  # withheld (contract §2)
    assert "address confirmed" not in text  # the reviewer's note
    assert site.code not in page.content()
    assert "Withheld from data protection officers" in text
    assert_accessible(page)
    screenshot(page, "dpo-request")


def test_page_through_the_register(page: Page, many: Site) -> None:
    site = many
    sign_in(page, site)
    order = [s.id for s in site.service.list_requests(holder=HOLDER)]
    assert len(order) > 25
    table = page.get_by_role("table")
    expect(table.locator("tbody tr")).to_have_count(25)
    expect(table).to_contain_text(order[24])
    pagination = page.get_by_role("navigation", name="Pages of results")
    expect(pagination.get_by_role("link", name="Page 1")).to_have_attribute("aria-current", "page")
    pagination.get_by_role("link", name="Next page").click()
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(table.locator("tbody tr")).to_have_count(len(order) - 25)
    expect(table).to_contain_text(order[25])
    expect(table).not_to_contain_text(order[0])
    expect(page.get_by_role("caption")).to_contain_text(f"Requests 26 to {len(order)}")
    assert_accessible(page)


def test_the_search_with_a_date_that_does_not_exist(page: Page, many: Site) -> None:
    sign_in(page, many)
    page.fill("#from-day", "30")
    page.fill("#from-month", "2")
    page.fill("#from-year", "2026")
    page.get_by_role("button", name="Search").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Date received from must be a real date")
    expect(page).to_have_title(re.compile("^Error: "))
    expect(page.locator("#from-day")).to_have_value("30")
    assert_accessible(page)
    summary.get_by_role("link").first.click()
    expect(page.locator("#from-day")).to_be_focused()


def test_download_the_csv_of_a_search(page: Page, many: Site, tmp_path: Path) -> None:
    site = many
    sign_in(page, site)
    page.select_option("#state", "refused")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"state=refused"))
    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile("as a spreadsheet")).click()
    download = info.value
    assert re.fullmatch(r"carewall-requests-islington-council-\d{4}-\d\d-\d\d\.csv",
                        download.suggested_filename)  # fmt: skip
    path = tmp_path / "requests.csv"
    download.save_as(path)
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    expected = site.service.list_requests(holder=HOLDER, state="refused")
    assert [r["id"] for r in rows] == [s.id for s in expected]
    assert {r["outcome"] for r in rows} == {"refused"}
    assert {r["holder"] for r in rows} == {HOLDER}
    assert "DPO-PAGE-00" in {r["reference"] for r in rows}
    assert site.code not in path.read_text("utf-8")


def test_the_outbox_and_a_printable_letter(page: Page, many: Site) -> None:
    site = many
    sign_in(page, site)
    page.get_by_role("link", name="Notices to people").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Notices to people")
    (notice,) = site.service.notices(site.released)
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=site.released))
    expect(row).to_contain_text("Ready to print")
    expect(row).to_contain_text("outbox")
    assert site.code not in page.content()
    assert_accessible(page)
    screenshot(page, "dpo-notices")

    row.get_by_role("link", name=f"View letter for notice {notice.id}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Letter for notice {notice.id}")
    letter = page.locator(".cw-letter")
    expect(letter).to_contain_text(f"Your access code:  {site.code}")
    expect(letter).to_contain_text("Your information was shared by Islington Council")
    button = page.get_by_role("button", name="Print this letter")
    expect(button).to_be_visible()  # JavaScript is on
    assert_accessible(page)
    screenshot(page, "dpo-letter")

    page.emulate_media(media="print")
    expect(page.locator(".govuk-service-navigation")).to_be_hidden()
    expect(page.locator(".govuk-header")).to_be_hidden()
    expect(page.locator(".govuk-footer")).to_be_hidden()
    expect(button).to_be_hidden()
    expect(page.get_by_role("heading", level=1)).to_be_hidden()
    expect(letter).to_be_visible()
    page.emulate_media(media="screen")
    expect(page.locator(".govuk-service-navigation")).to_be_visible()
    actions = [x.action for x in site.service.admin_log(HOLDER)]
    assert "letter_view" in actions  # the view was recorded


def test_print_every_letter_of_a_request(page: Page, many: Site) -> None:
    site = many
    sign_in(page, site)
    page.goto(f"{site.base}/dpo/requests/{site.released}")
    page.get_by_role("link", name="Print all the letters for this request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Letters for request {site.released}"
    )
    expect(page.locator(".cw-letter")).to_have_count(len(site.service.notices(site.released)))
    assert_accessible(page)


def test_the_letter_prints_without_javascript(page_without_js: Page, many: Site) -> None:
    site, page = many, page_without_js
    sign_in(page, site)
    (notice,) = site.service.notices(site.released)
    page.goto(f"{site.base}/dpo/notices/{notice.id}/letter")
    expect(page.get_by_role("button", name="Print this letter")).to_be_hidden()
    expect(page.get_by_text("use your browser's print command")).to_be_visible()
    expect(page.locator(".cw-letter")).to_contain_text(site.code)


def test_the_register_of_organisations_and_reviewers(page: Page, many: Site) -> None:
    site = many
    sign_in(page, site)
    page.get_by_role("link", name="Organisations and reviewers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Organisations and reviewers")
    reviewers = page.get_by_role("table", name=re.compile("^Reviewers at Islington Council"))
    expect(reviewers).to_contain_text("dpo-islington")
    expect(reviewers).to_contain_text("Release reviewer")
    expect(reviewers).not_to_contain_text("ig-whittington")
    orgs = page.get_by_role("table", name=re.compile("organisations, active first"))
    expect(orgs.get_by_role("row").filter(has_text="whittington-health")).to_contain_text(
        "Health service"
    )
    expect(page.get_by_text("carewall register …", exact=False).first).to_be_visible()
    assert_accessible(page)
    screenshot(page, "dpo-register")


def test_a_reviewer_is_refused_the_dpo_pages(page: Page, many: Site) -> None:
    site = many
    page.goto(site.base + "/sign-in")
    page.fill("#token", site.tokens.release)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/review$"))
    response = page.goto(site.base + "/dpo/requests")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("You cannot do that")
