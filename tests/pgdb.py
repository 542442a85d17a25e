"""Throwaway PostgreSQL databases on the shared local server, one per test.

Importable from every test module (pytest puts ``tests/`` on the path for the root conftest).
An unreachable server skips the test locally but fails it under CI (env ``CI`` set).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

__all__ = ["PG_SERVER", "pg_database"]

PG_SERVER = os.environ.get("CAREWALL_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5)


@contextmanager
def pg_database(prefix: str = "carewall_test") -> Iterator[str]:
    """A fresh, uniquely named database; dropped (even with open connections) afterwards."""
    try:
        admin = _admin()
    except psycopg.OperationalError as e:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_SERVER} is unreachable under CI: {e}")
        pytest.skip(f"PostgreSQL at {PG_SERVER} is unreachable")
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with _admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
