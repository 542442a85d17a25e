"""A live instance commits to disk; only a bulk build (the demo's year) may skip the wait."""

from __future__ import annotations

from pathlib import Path

from carewall.service import Service
from carewall.storage.db import open_store

FULL, NORMAL = 2, 1  # PRAGMA synchronous


def _synchronous(url: str, **kwargs: bool) -> int:
    store = open_store(url, **kwargs)
    try:
        with store.write() as conn:
            return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
    finally:
        store.dispose()


def test_a_store_is_durable_unless_built_in_bulk(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert _synchronous(url) == FULL
    assert _synchronous(url, durable=False) == NORMAL


def test_an_instance_built_in_bulk_is_served_durable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    built = Service.init(url, None, "demo.test/log", tmp_path / "demo.key", durable=False)
    built.close()
    served = Service.open(url, tmp_path / "demo.key")
    try:
        with served.store.write() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == FULL
    finally:
        served.close()
