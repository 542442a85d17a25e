"""Real-browser tests: Debian's headless Chromium driven by Playwright, axe-core, screenshots.

The browser is the system's ``/usr/bin/chromium`` (``make pytest`` installs the Debian
package); no test tool downloads one. axe-core comes from ``node_modules`` (``npm ci``).
Screenshots of every page are kept under ``docs/screens/`` and shown in the README.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_support import (
    HOLDER,
    REPO,
    Tokens,
    access_code,
    init_service,
    refused,
    reviewable,
    tokens_for,
    uvicorn_server,
)
from playwright.sync_api import Browser, Page, sync_playwright

from carewall.service import Service

CHROMIUM = os.environ.get("CAREWALL_CHROMIUM", "/usr/bin/chromium")
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
# The README's screenshots are written only when asked for (`make screenshots`), so a test
# run never changes tracked files; otherwise they go to a scratch folder.
SCREENS = Path(
    os.environ.get("CAREWALL_SCREENS") or Path(tempfile.gettempdir()) / "carewall-screens"
)
# WCAG 2.2 AA, and everything below it.
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        raise AssertionError("Debian's chromium is missing: run 'make install' (or apt-get)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) per test; JavaScript on."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    p = context.new_page()
    p.set_default_timeout(120_000)  # generous: a loaded machine must not fail a test
    try:
        yield p
    finally:
        context.close()


@pytest.fixture
def page_without_js(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(java_script_enabled=False)
    p = context.new_page()
    p.set_default_timeout(120_000)
    try:
        yield p
    finally:
        context.close()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.2 AA violations on the page as it is now (none expected)."""
    if not AXE.exists():
        raise AssertionError("axe-core is missing: run 'make install' (npm ci)")
    # Evaluated over the DevTools protocol, so the page's CSP (rightly strict) allows it.
    page.evaluate(AXE.read_text("utf-8"))
    result: dict[str, Any] = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        WCAG,
    )
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
    ]


def assert_accessible(page: Page) -> None:
    violations = axe_violations(page)
    assert violations == [], f"axe found WCAG 2.2 AA violations on {page.url}: {violations}"


def screenshot(page: Page, name: str) -> Path:
    """Keep a full-page screenshot as NAME.png under :data:`SCREENS` (``CAREWALL_SCREENS``,
    docs/screens with `make screenshots`); a blank or failed capture fails the test."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    png = page.screenshot(path=str(path), full_page=True)
    assert png.startswith(b"\x89PNG") and len(png) > 1000, f"screenshot {name} is empty"
    return path


def tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching ``selector`` has focus (keyboard only)."""
    target = page.locator(selector).first
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"could not reach {selector} with the keyboard")


@dataclass
class Site:
    """A served instance with a little history: released, refused, waiting and appealed."""

    base: str
    service: Service
    tokens: Tokens
    released: str  # released, notice delivered; the subject holds `code`
    code: str
    refused: str
    waiting: str  # waiting for a release reviewer
    appealed: str  # released, then appealed by the subject
    appeal_code: str
    reference: str  # the requester's reference of `released`


def build_site(tmp: Path) -> tuple[str, Service, Tokens, dict[str, str]]:
    db = f"sqlite:///{tmp / 'web.db'}"
    service = init_service(db, tmp)
    tokens = tokens_for(service)
    ids: dict[str, str] = {}
    doc = reviewable(reference="MPS-2026-0451")
    ids["released"] = service.submit(doc).id
    service.review(ids["released"], "dpo-islington", True, "address confirmed")
    ids["refused"] = service.submit(refused()).id
    ids["waiting"] = service.submit(reviewable(reference="MPS-2026-0452")).id
    ids["appealed"] = service.submit(reviewable(reference="MPS-2026-0453")).id
    service.review(ids["appealed"], "dpo-islington", True)
    service.deliver_pending()
    ids["code"] = access_code(service, ids["released"])
    ids["appeal_code"] = access_code(service, ids["appealed"])
    service.subject_appeal(ids["appealed"], ids["appeal_code"], "I was the victim, not a suspect")
    ids["reference"] = "MPS-2026-0451"
    return db, service, tokens, ids


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("site")
    db, service, tokens, ids = build_site(tmp)
    try:
        with uvicorn_server(db, tmp / "log.key", tmp / "server.log") as base:
            yield Site(base=base, service=service, tokens=tokens, **ids)
    finally:
        service.close()


def visible_text(page: Page) -> str:
    return re.sub(r"\s+", " ", page.locator("body").inner_text())


__all__ = [
    "HOLDER",
    "Site",
    "assert_accessible",
    "axe_violations",
    "browser",
    "page",
    "page_without_js",
    "screenshot",
    "site",
    "tab_to",
    "visible_text",
]
