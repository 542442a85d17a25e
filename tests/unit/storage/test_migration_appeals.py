"""``0012_appeals_per_subject`` on SQLite and PostgreSQL: the appeals a database holds are
kept, each gets its own id, a subject appeals a request once, and going back keeps the
first appeal of each request."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from carewall.storage import migrate, open_store
from carewall.storage.db import Store

_BEFORE = "0011_drop_stage_index"


def _filler(column: dict[str, Any]) -> object:
    kind = column["type"]
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer):
        return 0
    return "x"


def _request(conn: sa.Connection, rid: str) -> None:
    """A row of ``svc_requests`` with every column it requires filled (the test reads none)."""
    columns = sa.inspect(conn).get_columns("svc_requests")
    row = {c["name"]: _filler(c) for c in columns if not c["nullable"]}
    row["id"] = rid
    names = ", ".join(f'"{k}"' for k in row)
    values = ", ".join(f":{k}" for k in row)
    conn.execute(sa.text(f"INSERT INTO svc_requests ({names}) VALUES ({values})"), row)


def _appeal(conn: sa.Connection, rid: str, by: str, subject: int | None, at: str) -> None:
    conn.execute(
        sa.text(
            'INSERT INTO svc_appeals (request_id, "by", grounds, prior_outcome, lodged_at, '
            "subject) VALUES (:rid, :by, 'why', 'released', :at, :subject)"
        ),
        {"rid": rid, "by": by, "subject": subject, "at": at},
    )


def _appeals(store: Store) -> list[tuple[Any, ...]]:
    with store.read() as conn:
        rows = conn.execute(
            sa.text('SELECT request_id, "by", subject FROM svc_appeals ORDER BY lodged_at')
        )
        return [tuple(r) for r in rows]


def test_the_appeals_held_are_kept_and_a_subject_appeals_once(db_url: str) -> None:
    store = open_store(db_url)
    try:
        migrate.upgrade_with_alembic(store, _BEFORE)
        with store.writer.begin() as conn:
            _request(conn, "r1")
            _request(conn, "r2")
            _appeal(conn, "r1", "subject", 1, "2026-01-01T00:00:00Z")
            _appeal(conn, "r2", "requester", None, "2026-01-02T00:00:00Z")
        migrate.upgrade_with_alembic(store)
        assert _appeals(store) == [("r1", "subject", 1), ("r2", "requester", None)]
        with store.writer.begin() as conn:  # another subject of r1 may now appeal
            _appeal(conn, "r1", "subject", 0, "2026-01-03T00:00:00Z")
        with pytest.raises(sa.exc.IntegrityError), store.writer.begin() as conn:
            _appeal(conn, "r1", "subject", 1, "2026-01-04T00:00:00Z")  # the same one again
        with store.read() as conn:
            ids = [i for (i,) in conn.execute(sa.text("SELECT id FROM svc_appeals ORDER BY id"))]
        assert len(ids) == len(set(ids)) == 3
        migrate.downgrade(store, _BEFORE)
        assert _appeals(store) == [("r1", "subject", 1), ("r2", "requester", None)]
    finally:
        store.dispose()
