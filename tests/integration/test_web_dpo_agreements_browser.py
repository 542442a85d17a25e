"""The DPO's agreements page in a real browser (Debian's headless Chromium): find it from the
DPO's pages, read what each agreement owes, withdraw one that ended and was not withdrawn
in time (confirm, then the form posts with its CSRF token), and see it waiting for
destruction; every page accessible (axe, WCAG 2.2 AA) and screenshotted.

The instance's log is written 35 days ago (:func:`agreement_support.build_agreements` with
the service's clock then), and the server runs on today's clock: so ``isa-ending`` ended
35 days ago with a release under it (not withdrawn in time) and ``isa-withdrawn``'s
destruction was due 5 days ago.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from agreement_support import build_agreements
from api_support import HOLDER, Tokens, tokens_for, uvicorn_server
from browser_support import assert_accessible, screenshot
from playwright.sync_api import Locator, Page, expect

from carewall.service import Service
from carewall.service.agreement_records import get_agreement
from carewall.web.dpo_common import day

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-dpo-agreements")]

Built = tuple[str, Service, Tokens]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    tmp = tmp_path_factory.mktemp("agreements-site")
    db = f"sqlite:///{tmp / 'web.db'}"
    then = datetime.now(UTC) - timedelta(days=35)
    service = Service.init(
        db, None, "carewall.test/api", tmp / "log.key", operator=HOLDER, clock=lambda: then
    )
    service.publish_interval = 0.0
    try:
        tokens = tokens_for(service)
        build_agreements(service, then)
        with uvicorn_server(db, tmp / "log.key", tmp / "server.log") as base:
            yield base, service, tokens
    finally:
        service.close()


def row(page: Page, agreement_id: str) -> Locator:
    name = page.locator("span.cw-id", has_text=re.compile(f"^{agreement_id}$"))
    return page.get_by_role("row").filter(has=name)


def test_withdraw_an_agreement_that_ended_and_was_not_withdrawn(page: Page, built: Built) -> None:
    base, service, tokens = built
    page.goto(base + "/sign-in")
    page.fill("#token", tokens.admin)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dpo/requests$"))
    page.get_by_role("link", name="Data-sharing agreements").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Data-sharing agreements")
    expect(page.get_by_role("link", name="Data-sharing agreements")).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.locator("#owing")).to_contain_text("1 agreement not withdrawn in time")
    expect(page.locator("#owing")).to_contain_text("1 destruction overdue")
    expect(page.locator(".govuk-warning-text")).to_contain_text("The public audit fails it")
    expect(row(page, "isa-ending")).to_contain_text("Ended — not withdrawn")
    expect(row(page, "isa-withdrawn")).to_contain_text("Destruction overdue")
    expect(row(page, "isa-destroyed")).to_contain_text("Destroyed")
    expect(row(page, "isa-refused")).to_contain_text("Refused")
    expect(row(page, "isa-active")).to_contain_text("Metropolitan Police Service")
    assert_accessible(page)
    screenshot(page, "dpo-agreements")

    row(page, "isa-ending").get_by_role("link", name="Withdraw agreement isa-ending").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Withdraw agreement isa-ending")
    expect(page.get_by_text("1 time, about 1 person: Address, Name")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "dpo-agreement-withdraw")

    page.get_by_role("button", name="Withdraw agreement").click()
    expect(page).to_have_url(re.compile(r"/dpo/agreements\?withdrawn=isa-ending$"))
    banner = page.locator(".govuk-notification-banner--success")
    expect(banner).to_contain_text("Agreement isa-ending is withdrawn")
    due = day((datetime.now(UTC).date() + timedelta(days=30)).isoformat())
    expect(row(page, "isa-ending")).to_contain_text(f"Withdrawn — destruction due {due}")
    expect(page.locator("#owing")).to_contain_text("0 agreements not withdrawn in time")
    assert_accessible(page)
    record = get_agreement(service, "isa-ending")
    assert (record.state, record.releases, record.released) == ("withdrawn", 1, ["address", "name"])
