"""Shared fixtures. Each test gets its own database, so tests run in parallel under xdist."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

PG_SERVER = os.environ.get("CAREWALL_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def _pg_admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database, dropped afterwards.

    Skips when the server is unreachable, except under CI (env CI set), where that fails.
    """
    try:
        admin = _pg_admin()
    except psycopg.OperationalError as e:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_SERVER} is unreachable under CI: {e}")
        pytest.skip(f"PostgreSQL at {PG_SERVER} is unreachable")
    name = f"carewall_test_{uuid.uuid4().hex[:16]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with _pg_admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file in this test's own directory (created on first open)."""
    return f"sqlite:///{tmp_path / 'carewall.db'}"
