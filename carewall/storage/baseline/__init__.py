"""The schema at the newest migration, for creating a fresh SQLite database in one step.

Running every Alembic migration on an empty SQLite file takes about half a second (Alembic's
import and ten migrations); the demo, each new ledger and every test database pay it. A new
empty SQLite database is instead given ``sqlite.json``: the statements ``sqlite3``'s
``iterdump`` writes for a database the migrations have just built (its tables, indexes and
triggers, and the ``alembic_version`` row naming the migration it stands for), run in one
transaction. Anything else (PostgreSQL, a database with any object in it, a revision other
than the newest) goes through Alembic as before.

The snapshot is derived, never written by hand: ``python -m carewall.storage.baseline``
rebuilds it from the migrations, and a test fails (naming that command) when it differs
from what the migrations build now, so a new migration cannot be forgotten here.
"""

from __future__ import annotations

import json
from importlib import resources

from sqlalchemy.engine import Connection

__all__ = ["SNAPSHOT", "create_if_empty", "ordered", "statements"]

SNAPSHOT = "sqlite.json"
_FRAMING = ("BEGIN TRANSACTION;", "COMMIT;")


_LATER = ("CREATE INDEX", "CREATE UNIQUE INDEX", "CREATE TRIGGER", "CREATE VIEW")


def ordered(dump: list[str]) -> list[str]:
    """``iterdump``'s statements in a fixed order: tables and rows as it writes them, then
    indexes, triggers and views sorted (it writes those in creation order, which follows
    SQLAlchemy's unordered set of a table's indexes, so it differs from run to run)."""
    body = [s for s in dump if s not in _FRAMING]
    later = sorted(s for s in body if s.startswith(_LATER))
    return [s for s in body if not s.startswith(_LATER)] + later


def statements() -> list[str]:
    """The snapshot's statements, in order (see :func:`ordered`)."""
    text = (resources.files(__package__) / SNAPSHOT).read_text(encoding="utf-8")
    got = json.loads(text)
    if not isinstance(got, list) or not all(isinstance(s, str) for s in got):
        raise ValueError(f"{SNAPSHOT} must be a JSON list of SQL statements")
    return ordered(got)


def create_if_empty(conn: Connection) -> bool:
    """Build the newest schema on ``conn`` (a SQLite writer transaction) if its database has
    nothing in it yet; False, touching nothing, when it has any table, index or view."""
    found = conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar_one()
    if found:
        return False
    driver = conn.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()  # the same transaction, without SQLAlchemy's per-statement work
    try:
        for sql in statements():
            cursor.execute(sql)
    finally:
        cursor.close()
    return True
