"""Undoing a failed ``carewall init``: nothing it created is left behind.

An init that fails midway (a key file that already exists, a mail setting that does not
parse, the database going away) must not leave a half-made instance for the next ``init``
to trip over or for anyone to mistake for a real one. Only what this init created is
removed, never what was there before it started:

- the database's new tables, when it held no carewall schema before (another program's
  tables stay); and a SQLite file that held no tables at all before is removed whole,
  with its ``-wal``, ``-shm`` and ``-journal`` files;
- the log key file, once this init has written it.

Two inits may race for one database. Each holds an init lock for its whole run (init
takes several transactions): a PostgreSQL advisory lock on a connection of its own, or
an exclusive ``flock`` on the SQLite file (apart from SQLite's own locks). What was there
before is read under that lock, so the loser of a race sees the winner's schema as
existing, and removes nothing of it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from carewall.storage.db import Store, sqlite_file, translate_errors

__all__ = ["InitUndo"]

# ASCII "cw-init!" as a pg_advisory_lock key (the ledger sequencer's is "carewall").
_INIT_LOCK = int.from_bytes(b"cw-init!", "big")
_SIDE_FILES = ("-wal", "-shm", "-journal")


def _lock_file(path: Path) -> int | None:
    """An fd holding an exclusive flock on ``path`` (created 0600 if absent), or None when
    the path cannot be opened (SQLite then reports that as it always has)."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # a failed init removed the file while we waited: lock the new one


class InitUndo:
    """Watches one init: :meth:`undo` after a failure, :meth:`done` after success."""

    def __init__(self, db_url: str | None) -> None:
        self._file = sqlite_file(db_url)
        self._file_lock = None if self._file is None else _lock_file(self._file)
        self._store: Store | None = None
        self._pg_lock: Connection | None = None
        self._tables_before: set[str] | None = None
        self._key: Path | None = None

    def watch(self, store: Store) -> None:
        """Note what the database holds before init changes it (under the init lock)."""
        self._store = store
        if store.is_sqlite:
            if self._file is not None and self._file_lock is None:
                return  # cannot be opened: nothing will be created
            with store.read() as conn:
                self._tables_before = set(sa.inspect(conn).get_table_names())
            return
        with translate_errors():  # a missing database or server: the usual named error
            self._pg_lock = store.writer.connect()
            self._pg_lock.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _INIT_LOCK})
            self._pg_lock.commit()
            self._tables_before = set(sa.inspect(self._pg_lock).get_table_names())

    def key_created(self, path: Path) -> None:
        """The log key at ``path`` was written by this init."""
        self._key = path

    def undo(self) -> None:
        """Remove what this init created; best effort, never hiding the original error."""
        before = self._tables_before
        fresh = before is not None and "alembic_version" not in before
        remove_file = self._file is not None and before == set()
        try:
            if self._key is not None:
                self._key.unlink(missing_ok=True)
            if fresh and before is not None and not remove_file and self._store is not None:
                self._drop_new_tables(self._store, before)
        except Exception:  # the database went away: nothing more can be done from here
            pass
        finally:
            if self._store is not None:
                self._store.dispose()
            if remove_file and self._file is not None:
                for suffix in ("", *_SIDE_FILES):
                    Path(str(self._file) + suffix).unlink(missing_ok=True)
            self.done()

    def _drop_new_tables(self, store: Store, before: set[str]) -> None:
        conn = self._pg_lock
        if conn is not None:
            conn.rollback()
            self._drop(conn, before)
            conn.commit()
            return
        with store.writer.begin() as c:
            self._drop(c, before)

    @staticmethod
    def _drop(conn: Connection, before: set[str]) -> None:
        new = [name for name in sa.inspect(conn).get_table_names() if name not in before]
        if new:
            meta = sa.MetaData()
            meta.reflect(conn, only=new)
            meta.drop_all(conn)

    def done(self) -> None:
        """Release the init lock (idempotent); a closed connection or fd releases it too."""
        if self._file_lock is not None:
            fd, self._file_lock = self._file_lock, None
            os.close(fd)
        if self._pg_lock is None:
            return
        lock, self._pg_lock = self._pg_lock, None
        try:
            lock.rollback()
            lock.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _INIT_LOCK})
            lock.commit()
        except Exception:  # a lost connection has released the lock already
            pass
        finally:
            lock.close()
