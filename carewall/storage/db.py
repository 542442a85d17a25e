"""Open a database as a :class:`Store`: a writer engine and a reader engine.

SQLite (default): WAL journal, ``synchronous=FULL`` so a commit is durable when it returns,
and every writer transaction starts with ``BEGIN IMMEDIATE`` so there is one writer at a time
and no lock upgrade can deadlock. Readers use a separate engine whose transactions are
deferred, so proof reads never take the writer's lock.

PostgreSQL (``postgresql://…``): psycopg 3. Writers that append to the ledger serialise on a
transaction-scoped advisory lock (taken by the ledger sequencer), so several processes may
append at once and no index is ever assigned twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from carewall.errors import InputError, StorageError, UnavailableError

__all__ = ["DEFAULT_URL", "Store", "normalise_url", "open_store"]

DEFAULT_URL = "sqlite:///carewall.db"


def normalise_url(url: str | None) -> str:
    """Accept the forms people type: a bare path, ``sqlite:///…`` or ``postgresql://…``."""
    url = url or os.environ.get("CAREWALL_DB") or DEFAULT_URL
    if url.startswith(("postgres://", "postgresql://")):
        rest = url.split("://", 1)[1]
        return "postgresql+psycopg://" + rest
    if url.startswith("postgresql+psycopg://") or url.startswith("sqlite"):
        return url
    if "://" in url:
        raise InputError(
            "unsupported database URL scheme",
            field="--db",
            fix="use a file path, sqlite:///PATH or postgresql://USER@HOST:PORT/DB",
        )
    return "sqlite:///" + url


@dataclass(frozen=True)
class Store:
    """The pair of engines over one database."""

    url: str
    writer: Engine
    reader: Engine

    @property
    def is_sqlite(self) -> bool:
        return self.writer.dialect.name == "sqlite"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A writer transaction: committed on exit, rolled back on error."""
        with translate_errors(), self.writer.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction that never blocks or takes the writer's lock."""
        with translate_errors(), self.reader.connect() as conn:
            yield conn

    def dispose(self) -> None:
        self.writer.dispose()
        self.reader.dispose()


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn driver errors into carewall errors; an unreachable database becomes a 503."""
    try:
        yield
    except OperationalError as e:
        if "does not exist" in str(e.orig) and "database" in str(e.orig):
            # Retrying cannot help: the server is up but the named database is not there.
            raise StorageError(
                "the database named in the URL does not exist on that server",
                field="--db",
                fix="create it first (e.g. `createdb NAME`), or fix the name in the URL",
            ) from e
        raise UnavailableError(
            "the database is unavailable; nothing was recorded",
            fix="try again shortly; if it persists, check the database server",
        ) from e
    except DBAPIError as e:
        if e.connection_invalidated:
            raise UnavailableError(
                "the database connection was lost; nothing was recorded",
                fix="try again shortly",
            ) from e
        raise StorageError("the database refused the operation") from e


def _sqlite_engine(url: str, *, writer: bool) -> Engine:
    # Readers run in autocommit: each statement is its own consistent read, which is all an
    # append-only log needs, and it saves a BEGIN and a rollback per proof.
    engine = sa.create_engine(
        url,
        connect_args={"timeout": 60, "check_same_thread": False},
        pool_reset_on_return="rollback" if writer else None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take control of transactions ourselves (pysqlite's implicit BEGIN is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # Only a new, empty database takes this (it must precede WAL): 16 KB pages give
        # shallower B-trees and measurably faster batched appends than 4 KB.
        cur.execute("PRAGMA page_size=16384")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        if writer:
            # Checkpoint the WAL into the database about every 64 MB (4096 pages of 16 KB)
            # rather than every 1000 pages: a 10,000-entry batch writes ~7 MB, so a small
            # limit copies and fsyncs the database on nearly every commit.
            cur.execute("PRAGMA wal_autocheckpoint=4096")
        cur.close()

    if writer:

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def open_store(url: str | None = None) -> Store:
    """Open (without creating tables) the database at ``url``; see :func:`migrate.upgrade`."""
    full = normalise_url(url)
    if full.startswith("sqlite"):
        return Store(full, _sqlite_engine(full, writer=True), _sqlite_engine(full, writer=False))
    # No pre-ping: it costs a round trip per transaction. A connection that died with the
    # server fails its statement, which becomes a clean 503 (nothing was recorded), and
    # SQLAlchemy then discards the whole pool, so the next request reconnects.
    writer = sa.create_engine(full, pool_size=5, max_overflow=10)
    # Readers (proofs, tiles, pages) skip the pre-ping and the transaction: the log is
    # append-only, so a read never needs a multi-statement snapshot, and each proof costs
    # one round trip. A dropped connection still fails cleanly (503) and the pool
    # reconnects on the next read.
    reader = sa.create_engine(
        full, isolation_level="AUTOCOMMIT", pool_size=5, max_overflow=10, pool_reset_on_return=None
    )
    return Store(full, writer, reader)
