"""Where a public body keeps personal data: SQLite, PostgreSQL, CSV and Parquet files, and
folders of them, each presented to DuckDB as tables of text columns.

Files are read by DuckDB's own readers (``read_parquet``, ``read_csv``); databases through
their Python drivers, streamed into DuckDB as Arrow record batches of :data:`BATCH_ROWS`
rows (:mod:`carewall.clean.databases`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

import duckdb

from carewall.errors import InputError, ScanError

__all__ = [
    "BATCH_ROWS",
    "DateRange",
    "FileSource",
    "Source",
    "Table",
    "check_date_column",
    "duck",
    "open_source",
    "quote",
]

BATCH_ROWS = 65_536
Progress = Callable[[int], None]
_log = logging.getLogger("carewall.clean")


def quote(name: str) -> str:
    """A SQL identifier, double-quoted (the same rule in SQLite, PostgreSQL and DuckDB)."""
    return '"' + name.replace('"', '""') + '"'


def duck(memory_limit: str = "1GB") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for scanning: bounded memory, no progress bar on the terminal."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    return con


@dataclass(frozen=True)
class DateRange:
    """Rows whose ``column`` holds a date from ``start`` to ``end``, both included."""

    column: str
    start: date
    end: date

    def public(self) -> dict[str, str]:
        return {"column": self.column, "from": self.start.isoformat(), "to": self.end.isoformat()}


@dataclass(frozen=True)
class Table:
    name: str  # as the report shows it: a table name, or a file's path inside the source
    columns: tuple[str, ...]


class Source(Protocol):
    """A place to scan. ``relation`` makes ``columns`` of ``table`` readable in ``con`` as
    ``c0, c1, …`` (VARCHAR), limited to ``where`` (and to its first ``limit`` rows, read
    ``batch`` rows at a time from a database); it returns a FROM-able SQL expression."""

    kind: str
    label: str  # public: never credentials, never a path outside the source
    # files under a folder the scan cannot read (neither .csv nor .parquet), by their path
    # inside the folder: never scanned, so never found clean either (empty for the rest)
    skipped: tuple[str, ...]

    def tables(self) -> list[Table]: ...

    def relation(
        self,
        con: duckdb.DuckDBPyConnection,
        table: Table,
        columns: Sequence[str],
        where: DateRange | None,
        progress: Progress | None = None,
        *,
        limit: int | None = None,
        batch: int = BATCH_ROWS,
    ) -> str: ...

    def close(self) -> None: ...


def check_date_column(table: Table, where: DateRange | None) -> None:
    if where is not None and where.column not in table.columns:
        raise InputError(
            f"table {table.name!r} has no column {where.column!r}",
            field="--date-column",
            fix="name a date column every scanned table has, or limit the tables with --table",
        )


# ----- files ---------------------------------------------------------------------------------


class FileSource:
    """CSV and Parquet files: one file, or every such file under a folder."""

    def __init__(
        self,
        root: Path,
        files: Sequence[Path],
        kind: str,
        names: Sequence[str] | None = None,
        skipped: Sequence[str] = (),
    ) -> None:
        self.root = root
        self.files = list(files)
        self.kind = kind
        self.label = root.name
        self.skipped = tuple(skipped)
        # ``names``: the tables these files stand for (a purge re-scans its new files so)
        self._names = dict(zip(self.files, names, strict=True)) if names is not None else {}
        self._con = duck()

    def name_of(self, path: Path) -> str:
        if path in self._names:
            return self._names[path]
        return path.name if self.root.is_file() else path.relative_to(self.root).as_posix()

    def path_of(self, table: str) -> Path:
        for p in self.files:
            if self.name_of(p) == table:
                return p
        raise InputError(f"no file {table!r} in the source", field="--table")

    @staticmethod
    def reader(path: Path) -> str:
        lit = "'" + str(path).replace("'", "''") + "'"
        if path.suffix.lower() == ".parquet":
            return f"read_parquet({lit})"
        # Every CSV column as text, as it is written: nothing is reinterpreted or rounded.
        return f"read_csv({lit}, header = true, all_varchar = true)"

    @staticmethod
    def in_range(where: DateRange) -> str:
        col = quote(where.column)
        day = f"TRY_CAST(TRY_CAST({col} AS TIMESTAMP) AS DATE)"
        return f"{day} BETWEEN DATE '{where.start.isoformat()}' AND DATE '{where.end.isoformat()}'"

    def tables(self) -> list[Table]:
        out = []
        for p in self.files:
            try:
                cols = self._con.execute(f"DESCRIBE SELECT * FROM {self.reader(p)}").fetchall()
            except duckdb.Error as e:
                raise ScanError(
                    f"cannot read {self.name_of(p)!r} ({type(e).__name__})",
                    field="SOURCE",
                    fix="check the file is a readable CSV (with a header row) or Parquet file",
                ) from e
            out.append(Table(self.name_of(p), tuple(str(c[0]) for c in cols)))
        return out

    def relation(
        self,
        con: duckdb.DuckDBPyConnection,
        table: Table,
        columns: Sequence[str],
        where: DateRange | None,
        progress: Progress | None = None,
        *,
        limit: int | None = None,
        batch: int = BATCH_ROWS,
    ) -> str:
        check_date_column(table, where)
        cols = ", ".join(f"CAST({quote(c)} AS VARCHAR) AS c{i}" for i, c in enumerate(columns))
        cond = f" WHERE {self.in_range(where)}" if where else ""
        cap = f" LIMIT {int(limit)}" if limit is not None else ""
        reader = self.reader(self.path_of(table.name))
        return f"(SELECT {cols or '1 AS c_'} FROM {reader}{cond}{cap})"

    def close(self) -> None:
        self._con.close()


# ----- opening -------------------------------------------------------------------------------

_FILE_KINDS = {".csv": "csv", ".parquet": "parquet"}


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _warn_skipped(skipped: Sequence[str], shown: int = 20) -> None:
    """Say which files a folder scan will not read (names inside the folder, no values):
    on stderr (logging's last-resort handler, when the application configured none), and
    in the scan report's ``skipped``."""
    names = ", ".join(skipped[:shown]) + (f" and {len(skipped) - shown} more" if
                                           len(skipped) > shown else "")  # fmt: skip
    _log.warning(
        "warning: the folder scan skips %d file(s) that are neither .csv nor .parquet, so "
        "they are NOT checked: %s (export them as CSV or Parquet to scan them)",
        len(skipped),
        names,
    )


def open_source(spec: str) -> Source:
    """``postgresql://…``, ``sqlite:///PATH``, a SQLite file, a CSV or Parquet file, or a folder."""
    # Here, not at the top: carewall.clean.databases builds on this module.
    from carewall.clean.databases import PostgresSource, SqliteSource

    if spec.startswith(("postgresql://", "postgres://")):
        return PostgresSource(spec)
    path = Path(spec.removeprefix("sqlite:///")).expanduser()
    if not path.exists():
        raise InputError("no file or folder at that path", field="SOURCE", fix="check the path")
    if path.is_dir():
        every = sorted(p for p in path.rglob("*") if p.is_file())
        files = [p for p in every if p.suffix.lower() in _FILE_KINDS]
        skipped = [
            p.relative_to(path).as_posix() for p in every if p.suffix.lower() not in _FILE_KINDS
        ]
        if not files:
            others = f" ({len(skipped)} other file(s): the scan cannot read them)"
            raise InputError(
                "the folder holds no .csv or .parquet files" + (others if skipped else ""),
                field="SOURCE",
                fix="export the data as CSV (with a header row) or Parquet, or check the path",
            )
        if skipped:
            _warn_skipped(skipped)
        return FileSource(path, files, "folder", skipped=skipped)
    if _is_sqlite(path):
        return SqliteSource(path)
    kind = _FILE_KINDS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            "not a SQLite database, .csv or .parquet file",
            field="SOURCE",
            fix="pass a SQLite file, a postgresql:// URL, a CSV or Parquet file, or a folder",
        )
    return FileSource(path, [path], kind)
