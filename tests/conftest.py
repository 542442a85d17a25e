"""Shared fixtures. Each test gets its own database, so tests run in parallel under xdist."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from pgdb import pg_database

# No test may fail because the machine is busy: no hypothesis deadline anywhere, and no
# health check that times data generation (a module may still tighten its own settings).
settings.register_profile("carewall", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("carewall")


@pytest.fixture(autouse=True, scope="session")
def _config_apart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test writes to the user's own configuration (``carewall audit --state`` makes
    its sealing key in ``$XDG_CONFIG_HOME``); subprocesses inherit the variable."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
        yield


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database, dropped afterwards."""
    with pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'carewall.db'}"
    else:
        with pg_database() as url:
            yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file in this test's own directory (created on first open)."""
    return f"sqlite:///{tmp_path / 'carewall.db'}"
