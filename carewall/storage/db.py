"""Open a database as a :class:`Store`: a writer engine and a reader engine.

SQLite (default): WAL journal, ``synchronous=FULL`` so a commit is durable when it returns,
and every writer transaction starts with ``BEGIN IMMEDIATE`` so there is one writer at a time
and no lock upgrade can deadlock. Readers use a separate engine whose transactions are
deferred, so proof reads never take the writer's lock.

A SQLite database holds personal data, so its file is created readable and writable by its
owner only (0600); SQLite gives its ``-wal`` and ``-shm`` files the database file's mode.

PostgreSQL (``postgresql://…``): psycopg 3. Writers that append to the ledger serialise on a
transaction-scoped advisory lock (taken by the ledger sequencer), so several processes may
append at once and no index is ever assigned twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from carewall.errors import InputError, StorageError, UnavailableError

__all__ = [
    "DEFAULT_URL",
    "Store",
    "create_private_file",
    "normalise_url",
    "open_store",
    "pipelined",
    "sqlite_file",
]

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


def sqlite_file(url: str | None) -> Path | None:
    """The file a SQLite URL names, or None (PostgreSQL, in memory, or a ``file:`` URI)."""
    full = normalise_url(url)
    if not full.startswith("sqlite"):
        return None
    parsed = make_url(full)
    name = parsed.database
    if not name or name == ":memory:" or "uri" in parsed.query or name.startswith("file:"):
        return None
    return Path(name)


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists; True when this call made it.

    ``O_EXCL`` makes the answer race-free: of two processes, only one creates the file. An
    empty file is a valid empty SQLite database. A path that cannot be created (a missing
    directory, say) is left to SQLite, which reports it as it always has.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return False
    os.close(fd)
    return True


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
    """Turn driver errors into carewall errors; an unreachable database becomes a 503.

    A value no database can store (a NUL for PostgreSQL, a lone surrogate for either) is
    refused at every boundary by :mod:`carewall.text`, naming the field; should one reach
    the driver all the same (a filter, say), it is still bad input (422, exit 2), not a
    fault of the database (500).
    """
    try:
        yield
    except UnicodeEncodeError as e:
        if "surrogates not allowed" not in str(e):
            raise
        raise _unstorable() from e
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
        if "cannot contain NUL" in str(e.orig):
            raise _unstorable() from e
        raise StorageError("the database refused the operation") from e


def placeholder(conn: Connection) -> str:
    """The driver's positional parameter marker (qmark for sqlite3, format for psycopg)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def driver_rows(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on the driver's own cursor, in ``conn``'s transaction.

    For the paths dominated by per-statement or per-row overhead (the ledger's proofs,
    fsck and head, a token's lookup), which skip SQLAlchemy's result layer; errors are
    still SQLAlchemy's (:func:`driver_errors`).
    """
    with driver_errors(conn, sql):
        cur = conn.connection.cursor()
        try:
            cur.execute(sql, tuple(params))
            return list(cur.fetchall())
        finally:
            cur.close()


def driver_errors(conn: Connection, statement: str) -> AbstractContextManager[None]:
    """Errors of a statement run on ``conn``'s own driver cursor, treated as SQLAlchemy
    treats its own: wrapped (so :func:`translate_errors` names them) and, when the
    connection was lost, that connection invalidated, so the pool drops it and the caller
    gets a 503 now and a fresh connection next time, never a 500.

    For the hot paths that skip SQLAlchemy's execution layer (a token's lookup, the
    ledger's reads, a batch of submits' rows).
    """
    return _DriverErrors(conn, statement)


class _DriverErrors:
    """:func:`driver_errors`' context, as a class: a submit runs several statements in one
    each, and a ``@contextmanager`` generator costs three times as much per use."""

    __slots__ = ("_conn", "_statement")

    def __init__(self, conn: Connection, statement: str) -> None:
        self._conn = conn
        self._statement = statement

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, e: BaseException | None, tb: object) -> None:
        if e is None:
            return
        conn = self._conn
        dialect = conn.dialect
        base = dialect.loaded_dbapi.Error
        if not isinstance(e, base):
            return
        lost = dialect.is_disconnect(e, conn.connection.dbapi_connection, None)
        if lost:
            conn.invalidate(e)
        wrapped = DBAPIError.instance(
            self._statement,
            None,
            e,
            base,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=dialect,
        )
        raise wrapped from e


def pipelined(conn: Connection) -> AbstractContextManager[None]:
    """Send the block's statements to PostgreSQL as one psycopg pipeline (one round trip).

    For statements whose results the block does not read before it ends (INSERTs). On
    SQLite, which runs in process, the block runs as it is. An error the server reports
    for any statement aborts the transaction, as it would have statement by statement:
    raised inside the block as SQLAlchemy raises it, or at its end as a StorageError (or
    UnavailableError when the connection is lost), never as a bare driver error.
    """
    if conn.dialect.name != "postgresql":
        return nullcontext()  # (no generator to run: every SQLite submit comes here)
    return _pg_pipeline(conn)


@contextmanager
def _pg_pipeline(conn: Connection) -> Iterator[None]:
    import psycopg

    raw = conn.connection.driver_connection
    assert raw is not None
    try:
        with raw.pipeline():
            yield
    except psycopg.OperationalError as e:
        raise UnavailableError(
            "the database connection was lost; nothing was recorded", fix="try again shortly"
        ) from e
    except psycopg.Error as e:
        raise StorageError("the database refused the operation") from e


def _unstorable() -> InputError:
    return InputError(
        "a value holds a NUL character or a lone surrogate, which cannot be stored",
        fix="remove it; nothing was recorded",
    )


def _sqlite_engine(url: str, *, writer: bool, durable: bool = True) -> Engine:
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
        # FULL: a commit is on disk when it returns. NORMAL (a bulk build that is rebuilt if
        # lost, never a live instance): in WAL mode still never corrupt, but the last
        # commits before a power cut may be lost, and a commit does not wait for the disk.
        cur.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=NORMAL")
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


def open_store(url: str | None = None, *, durable: bool = True) -> Store:
    """Open (without creating tables) the database at ``url``; see :func:`migrate.upgrade`.

    ``durable=False`` is for a SQLite database built in bulk and rebuilt if lost (the
    demo): commits stop waiting for the disk (see :func:`_sqlite_engine`). PostgreSQL
    ignores it: a server's durability is its operator's setting.
    """
    full = normalise_url(url)
    if full.startswith("sqlite"):
        path = sqlite_file(full)
        if path is not None:
            create_private_file(path)  # before SQLite would create it with the umask's mode
        return Store(
            full,
            _sqlite_engine(full, writer=True, durable=durable),
            _sqlite_engine(full, writer=False, durable=durable),
        )
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
