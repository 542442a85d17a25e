"""The public's pages in a real browser: the firewall statement, the statistics, the log."""

from __future__ import annotations

import httpx
import pytest
from browser_support import Site, assert_accessible, screenshot, tab_to, visible_text
from playwright.sync_api import Page

from carewall.audit.run import audit_log
from carewall.service.statistics import statistics_at

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-public")]


def _private_strings(site: Site) -> list[str]:
    """What must never appear on a public page: references, subject refs, names, codes."""
    out = [site.reference, site.code, site.appeal_code, "I was the victim"]
    for rid in (site.released, site.refused, site.waiting, site.appealed):
        rec = site.service.get(rid)
        out += [s.ref for s in rec.subjects if getattr(s, "ref", None)]
        for person in (rec.officer, rec.authorised_by):
            out += [str(v) for v in (person or {}).values() if isinstance(v, str) and len(v) > 3]
    return [s for s in out if s]


def test_home_states_the_firewall_from_the_signed_log(site: Site, page: Page) -> None:
    page.goto(site.base + "/")
    assert page.title() == "Firewall statement – carewall"
    stats = statistics_at(site.service)
    summary = page.locator(".govuk-summary-list")
    assert summary.locator("text=Requests received").count() == 1
    text = visible_text(page)
    assert f"Requests received {stats.received:,}" in text
    assert stats.releases_to_immigration_enforcement == 0
    assert "Releases to immigration enforcement 0" in text
    assert f"first {stats.size:,} entries" in text
    assert "carewall audit" in text and site.service.ledger.verifier_key in text
    assert_accessible(page)
    screenshot(page, "home")


def test_log_page_explains_the_log_in_plain_words(site: Site, page: Page) -> None:
    page.goto(site.base + "/log/")
    assert page.locator("h1").inner_text() == "Public log"
    text = visible_text(page)
    assert site.service.ledger.origin in text
    assert site.service.ledger.verifier_key in text
    assert "How to audit this log" in text
    rows = page.locator("table tbody tr")
    assert rows.count() >= 5
    assert "Request" in text and "Release" in text
    assert_accessible(page)
    screenshot(page, "log")


@pytest.mark.parametrize("path", ["/", "/log/", "/statistics", "/my-data", "/sign-in"])
def test_public_pages_hold_no_personal_data(site: Site, page: Page, path: str) -> None:
    page.goto(site.base + path)
    html = page.content()
    for secret in _private_strings(site):
        assert secret not in html, f"{path} shows private data"


def test_pages_work_without_javascript(site: Site, page_without_js: Page) -> None:
    page_without_js.goto(site.base + "/")
    page_without_js.get_by_role("link", name="Public log").first.click()
    assert page_without_js.locator("h1").inner_text() == "Public log"


def test_a_program_still_gets_json_at_the_root(site: Site) -> None:
    r = httpx.get(site.base + "/", timeout=60)
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["service"] == "carewall"


def test_unknown_page_is_a_page_not_json(site: Site, page: Page) -> None:
    response = page.goto(site.base + "/no-such-page")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "Page not found"
    assert_accessible(page)


def test_keyboard_reaches_the_log_from_the_skip_link(site: Site, page: Page) -> None:
    page.goto(site.base + "/")
    tab_to(page, "a.govuk-skip-link")
    tab_to(page, "a[href='/log/']")
    page.keyboard.press("Enter")
    page.wait_for_url(site.base + "/log/")
    assert page.locator("h1").inner_text() == "Public log"


def test_statistics_page_shows_every_table_with_chart_and_data(site: Site, page: Page) -> None:
    page.goto(site.base + "/statistics")
    stats = statistics_at(site.service)
    charts = page.locator("main svg[role='img']")
    tables = page.locator("table.govuk-table")
    assert charts.count() == 6 and tables.count() == 6
    for i in range(6):
        labelled = charts.nth(i).get_attribute("aria-labelledby") or ""
        assert labelled and page.locator(f"#{labelled.split()[0]}").count() == 1
    outcome = page.locator("section[aria-labelledby='outcome'] table")
    released = outcome.locator("tr", has_text="Released").first
    assert released.locator("td").inner_text() == str(dict(stats.table("outcome"))["released"])
    assert f"first {stats.size:,} entries" in visible_text(page)
    assert_accessible(page)
    screenshot(page, "statistics")


def test_statistics_downloads_are_the_figures_on_the_page(site: Site, page: Page) -> None:
    page.goto(site.base + "/statistics")
    stats = statistics_at(site.service)
    with page.expect_download() as info:
        page.get_by_role("link", name="CSV").click()
    csv_text = info.value.path().read_bytes().decode("utf-8")
    assert csv_text == stats.to_csv()
    json_href = page.get_by_role("link", name="JSON").get_attribute("href")
    assert json_href == f"/statistics.json?size={stats.size}"


def test_statistics_page_figures_are_what_the_auditor_recomputes(site: Site, page: Page) -> None:
    """The page, its JSON and an outside auditor's recomputation agree, figure by figure."""
    page.goto(site.base + "/statistics")
    href = page.get_by_role("link", name="JSON").get_attribute("href") or ""
    size = int(href.rsplit("=", 1)[1])
    published = httpx.get(site.base + href, timeout=60).json()
    report, _state = audit_log(site.base + "/", site.service.ledger.verifier_key, statistics=True)
    assert report.ok and report.statistics_match is True
    assert report.size == size  # the auditor checked the checkpoint the page covers
    for dimension, rows in published["tables"].items():
        table = page.locator(f"section[aria-labelledby='{dimension.replace('_', '-')}'] tbody")
        shown = [int(c.replace(",", "")) for c in table.locator("td").all_inner_texts()]
        assert shown == [row["count"] for row in rows], dimension
    summary = visible_text(page)
    assert f"Requests received {published['firewall']['received']:,}" in summary
