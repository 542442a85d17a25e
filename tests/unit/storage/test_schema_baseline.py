"""A new SQLite database gets the migrations' snapshot; it must be what they build.

The snapshot (``carewall/storage/baseline/sqlite.json``) saves every new SQLite database
about half a second of Alembic. These tests hold it to the migrations: stale, it fails here
with the command that rebuilds it; loaded, the database is the same, statement for
statement, as one the migrations built; anything but an empty database at the newest
revision still goes through Alembic.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from carewall.storage import migrate, open_store
from carewall.storage.baseline import ordered, statements
from carewall.storage.baseline.__main__ import built_by_migrations, render


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return ordered(list(conn.iterdump()))
    finally:
        conn.close()


def _upgrade(path: Path, revision: str = "head") -> None:
    store = open_store(f"sqlite:///{path}")
    try:
        migrate.upgrade(store, revision)
    finally:
        store.dispose()


def test_the_snapshot_is_what_the_migrations_build_now() -> None:
    packaged = Path(__file__).parents[3] / "carewall/storage/baseline/sqlite.json"
    assert packaged.read_text(encoding="utf-8") == render(built_by_migrations()), (
        "carewall/storage/baseline/sqlite.json is stale: run "
        "`python -m carewall.storage.baseline` and commit the result"
    )


def test_an_empty_database_gets_the_same_schema_as_the_migrations_give(tmp_path: Path) -> None:
    _upgrade(tmp_path / "new.db")
    assert _dump(tmp_path / "new.db") == built_by_migrations()
    store = open_store(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        assert migrate.current_revision(store) == migrate.head_revision(store)
    finally:
        store.dispose()


def test_the_snapshot_names_the_newest_migration() -> None:
    store = open_store("sqlite://")
    try:
        head = migrate.head_revision(store)
    finally:
        store.dispose()
    assert f"INSERT INTO \"alembic_version\" VALUES('{head}');" in statements()


def test_an_older_database_is_migrated_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _upgrade(path, "0005_web")  # not the newest revision: Alembic builds it
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO ledger_meta (key, value) VALUES ('kept', 'yes')")
    conn.commit()
    conn.close()
    _upgrade(path)
    conn = sqlite3.connect(path)
    try:
        kept = conn.execute("SELECT value FROM ledger_meta WHERE key = 'kept'").fetchall()
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    finally:
        conn.close()
    assert kept == [("yes",)]
    assert [v for (v,) in version] == [
        s.split("'")[1] for s in statements() if s.startswith('INSERT INTO "alembic_version"')
    ]


def test_a_database_holding_anything_else_is_left_to_alembic(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE someone_elses (x INTEGER)")
    conn.commit()
    conn.close()
    _upgrade(path)
    dump = _dump(path)
    assert "CREATE TABLE someone_elses (x INTEGER);" in dump
    assert sorted(set(dump) - {"CREATE TABLE someone_elses (x INTEGER);"}) == sorted(
        built_by_migrations()
    )


@pytest.mark.parametrize("revision", ["0001_ledger", "base"])
def test_other_revisions_never_use_the_snapshot(tmp_path: Path, revision: str) -> None:
    path = tmp_path / "r.db"
    _upgrade(path, revision)
    assert len(_dump(path)) < len(built_by_migrations())
