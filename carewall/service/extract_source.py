"""The source of an extract, pinned: both passes read what was logged (:func:`pinned`).

An extract reads its source twice: once for the subjects it logs, then to filter the rows
to a held file. A file or SQLite database is copied first into a private folder of the
hold dir and both passes read the copy; a PostgreSQL table is fingerprinted before and
after. Either way the caller learns whether the source the filter read is the one whose
people were logged (:mod:`carewall.service.extracts`).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from carewall.egress import Source
from carewall.errors import InputError, ScanError
from carewall.filehash import file_sha256

__all__ = ["make_hold_dir", "pinned"]


def make_hold_dir(hold_dir: Path) -> None:
    """The folder for held files (mode 0700), made before anything is read or logged."""
    try:
        hold_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        raise InputError(
            "cannot be made a folder",
            field="--hold-dir",
            fix="name a folder carewall may create and write to",
        ) from None


def _sqlite_copy(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite database (the backup API: one read snapshot)."""
    try:
        con = sqlite3.connect(src.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            out = sqlite3.connect(dst)
            try:
                con.backup(out)
                out.execute("PRAGMA journal_mode = DELETE")  # no -wal beside the copy
            finally:
                out.close()
        finally:
            con.close()
    except sqlite3.Error as e:
        raise ScanError(
            f"cannot read the SQLite database ({type(e).__name__})",
            field="SOURCE",
            fix="check the path and that it is a SQLite database",
        ) from e


def _pg_fingerprint(source: Source) -> tuple[int, str]:
    """Every row version of a PostgreSQL table, as ``(rows, md5 of its (ctid, xmin)s)``.

    A committed insert, update or delete gives the rows it writes a new ``xmin`` (a
    transaction id, never reused), so two equal fingerprints mean no row changed in
    between, even one changed and changed back."""
    import psycopg
    from psycopg import sql

    assert source.table is not None
    query = sql.SQL(
        "SELECT COALESCE(SUM(k), 0)::bigint, COALESCE(md5(string_agg(h, ',' ORDER BY p)), '')"
        " FROM (SELECT (ctid::text::point)[0] AS p, count(*) AS k,"
        " md5(string_agg(ctid::text || ':' || xmin::text, ',' ORDER BY ctid)) AS h"
        " FROM {} GROUP BY 1) AS pages"
    ).format(sql.Identifier(source.schema or "public", source.table))
    try:
        with psycopg.connect(source.location, connect_timeout=10) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            row = conn.execute(query).fetchone()
    except psycopg.Error as e:
        raise ScanError(
            f"cannot read the PostgreSQL table ({type(e).__name__})",
            field="SOURCE",
            fix="check the URL, the table, and that the account may read it",
        ) from None
    assert row is not None
    return int(row[0]), str(row[1])


@contextmanager
def pinned(source: Source, hold_dir: Path) -> Iterator[tuple[Source, Callable[[], bool]]]:
    """The source as BOTH passes read it (the subjects logged, then the filter), and a test
    that it is still what they read.

    A file or SQLite database is copied first into a private folder in ``hold_dir`` (0700;
    SQLite by its backup API, one read snapshot), both passes read the copy, and the test
    is that the copy's SHA-256 is unchanged: the people logged are the people filtered, by
    construction. A PostgreSQL table cannot be copied: its rows' ``(ctid, xmin)`` are
    fingerprinted before the first pass and after the second (:func:`_pg_fingerprint`).
    The copy is deleted afterwards, whatever happens."""
    if source.kind == "postgres":
        before = _pg_fingerprint(source)
        yield source, lambda: _pg_fingerprint(source) == before
        return
    original = source.path()
    work = Path(tempfile.mkdtemp(prefix=".source-", dir=hold_dir))
    try:
        copy = work / original.name
        if source.kind == "sqlite":
            _sqlite_copy(original, copy)
        else:
            shutil.copyfile(original, copy)
        os.chmod(copy, 0o600)
        digest = file_sha256(copy)
        yield (
            dataclasses.replace(source, location=str(copy)),
            lambda: copy.is_file() and file_sha256(copy) == digest,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
