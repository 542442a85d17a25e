"""Read errors: any failure reading a source, as an error that quotes none of its values.

DuckDB, ``sqlite3``, ``psycopg`` and pyarrow quote the offending row or value in their
messages (DuckDB's CSV reader prints the whole line). Every read is wrapped
(:func:`read_errors`): the error becomes an :class:`~carewall.errors.InputError` naming the
source and the kind of problem (with the CSV line number, or the column and row of
undecodable text), never a value from the data, and without the library's exception as
its cause. SQLite text is fetched as bytes and decoded by
:func:`~carewall.egress.databases.arrow_stream`, so that a value that is not UTF-8 is found
by its column and row without its text.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]

from carewall.egress.sources import Source
from carewall.errors import CarewallError, InputError

if TYPE_CHECKING:
    from carewall.egress.databases import DbReader

__all__ = ["read_errors"]

_CSV_FIX = (
    "save it as UTF-8, comma-separated, with a header row and as many fields in every row "
    'as in the header; put values holding commas, quotes or line breaks in "double quotes"'
)
# DuckDB's CSV errors begin "CSV Error on Line: <n>"; the next line quotes the row itself.
_CSV_LINE = re.compile(r"(?:[A-Za-z ]*Error: )?CSV Error on Line: (\d+)")


def _read_error(source: Source, e: BaseException) -> InputError:
    """``e``, a reader's error, as an InputError naming ``source`` and the kind of problem.

    Only the error's class, a CSV line number and fixed phrases of DuckDB's messages are
    used (which phrase is matched only picks the words of the message: a value quoted
    in the library's message never reaches this one)."""
    msg = str(e)
    if source.kind == "csv" and (m := _CSV_LINE.match(msg)):
        line = int(m.group(1))
        if "Expected Number of Columns" in msg:
            what = f"line {line} has a different number of fields from the header"
        elif "Invalid unicode" in msg:
            what = f"line {line} is not valid UTF-8"
        elif "unterminated quote" in msg:
            what = f"line {line} opens a quoted value that is never closed"
        else:
            what = f"line {line} is not a well-formed CSV row"
        return InputError(f"cannot read the CSV file {source.label}: {what}",
                          field="SOURCE", fix=_CSV_FIX)  # fmt: skip
    if "Invalid string encoding" in msg or isinstance(e, UnicodeDecodeError):
        what = "a text value is not valid UTF-8"
    elif source.kind == "csv":
        what = "it is not a well-formed CSV file"
    else:
        what = f"the read failed ({type(e).__name__})"
    fix = {
        "csv": _CSV_FIX,
        "parquet": "check it is a readable Parquet file, its text UTF-8",
    }.get(source.kind, "check the table can be read, its text UTF-8")
    return InputError(f"cannot read the source {source.label}: {what}", field="SOURCE", fix=fix)


@contextmanager
def read_errors(source: Source, reader: DbReader | None = None) -> Iterator[None]:
    """Turn any error reading ``source`` into a clean :class:`InputError` (see the module
    docstring); the error recorded by ``reader``'s stream, when it failed, is raised as it
    is. CarewallErrors pass through."""
    try:
        yield
    except CarewallError:
        raise
    except Exception as e:
        known = (duckdb.Error, sqlite3.Error, pa.ArrowException, UnicodeDecodeError)
        if not isinstance(e, known) and not _is_db_error(e):
            raise
        if reader is not None and reader.failure is not None:
            raise reader.failure from None
        raise _read_error(source, e) from None


def _is_db_error(e: BaseException) -> bool:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(e, psycopg.Error)
