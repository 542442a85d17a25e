"""Fixtures shared by the HTTP API tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import Tokens, api

# The real-browser fixtures (Debian's Chromium), for every test module in this folder.
from browser_support import browser, page, page_without_js, site  # noqa: F401
from fastapi.testclient import TestClient
from pgdb import pg_database

from carewall.service import Service


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[TestClient, Service, Tokens]]:
    """An instance behind the API on SQLite and on PostgreSQL (modules may shadow it)."""
    if request.param == "sqlite":
        with api(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path) as s:
            yield s
    else:
        with pg_database() as url, api(url, tmp_path) as s:
            yield s
