"""Where a public body keeps personal data: SQLite, PostgreSQL, CSV and Parquet files, and
folders of them, each presented to DuckDB as tables of text columns.

Files are read by DuckDB's own readers (``read_parquet``, ``read_csv``). DuckDB's SQLite and
PostgreSQL scanners are extensions it downloads from its own site at run time, which is
unreachable here and a binary carewall could not pin; so databases are read through their
Python drivers (``sqlite3``; ``psycopg`` with a server-side cursor) and streamed into DuckDB
as Arrow record batches of :data:`BATCH_ROWS` rows: memory stays bounded whatever the size.
A database source keeps one connection, so a purge can re-scan inside its own transaction.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]

from carewall.errors import InputError, ScanError

__all__ = [
    "BATCH_ROWS",
    "DateRange",
    "FileSource",
    "PostgresSource",
    "Source",
    "SqliteSource",
    "Table",
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
    ``c0, c1, …`` (VARCHAR), limited to ``where``; it returns a FROM-able SQL expression."""

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
    ) -> str: ...

    def close(self) -> None: ...


def _check_date_column(table: Table, where: DateRange | None) -> None:
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
    ) -> str:
        _check_date_column(table, where)
        cols = ", ".join(f"CAST({quote(c)} AS VARCHAR) AS c{i}" for i, c in enumerate(columns))
        cond = f" WHERE {self.in_range(where)}" if where else ""
        return f"(SELECT {cols or '1 AS c_'} FROM {self.reader(self.path_of(table.name))}{cond})"

    def close(self) -> None:
        self._con.close()


# ----- databases -----------------------------------------------------------------------------


class _DbSource:
    """A database read through its DB-API driver, one connection, streamed as Arrow."""

    kind = "database"
    label = ""
    skipped: tuple[str, ...] = ()

    def cursor(self) -> Any:
        raise NotImplementedError

    def in_range(self, where: DateRange) -> tuple[str, tuple[str, str]]:
        raise NotImplementedError

    def text(self, column: str) -> str:
        return f"CAST({quote(column)} AS TEXT)"

    def qualified(self, table: str) -> str:
        return quote(table)

    def select(self, table: Table, columns: Sequence[str], where: DateRange | None) -> Any:
        _check_date_column(table, where)
        cols = ", ".join(self.text(c) for c in columns) or "1"
        sql = f"SELECT {cols} FROM {self.qualified(table.name)}"
        params: tuple[str, ...] = ()
        if where is not None:
            cond, params = self.in_range(where)
            sql += f" WHERE {cond}"
        cur = self.cursor()
        try:
            cur.execute(sql, params)
        except Exception as e:
            raise ScanError(
                f"the database refused to read table {table.name!r} ({type(e).__name__})",
                field="SOURCE",
                fix="check the account may read it, and that the date column holds dates",
            ) from e
        return cur

    def relation(
        self,
        con: duckdb.DuckDBPyConnection,
        table: Table,
        columns: Sequence[str],
        where: DateRange | None,
        progress: Progress | None = None,
    ) -> str:
        cur = self.select(table, columns, where)
        n = max(1, len(columns))
        schema = pa.schema([(f"c{i}", pa.string()) for i in range(n)])

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                while rows := cur.fetchmany(BATCH_ROWS):
                    # A table with no candidate column is read as ``SELECT 1`` (its rows
                    # are counted, nothing else): integers, which are not made text.
                    if not columns:
                        arrays = [pa.nulls(len(rows), pa.string())]
                    else:
                        arrays = [pa.array(c, pa.string()) for c in zip(*rows, strict=True)]
                    yield pa.RecordBatch.from_arrays(arrays, schema=schema)
                    if progress is not None:
                        progress(len(rows))
            finally:
                cur.close()

        name = f"cw_stream_{id(cur):x}"
        con.register(name, pa.RecordBatchReader.from_batches(schema, batches()))
        return name


class SqliteSource(_DbSource):
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = path.name
        # isolation_level=None: carewall says when a transaction begins and ends. DuckDB pulls
        # the stream from its own thread, one batch at a time, so the connection is shared.
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def cursor(self) -> Any:
        return self.conn.cursor()

    def in_range(self, where: DateRange) -> tuple[str, tuple[str, str]]:
        return f"date({quote(where.column)}) BETWEEN ? AND ?", (
            where.start.isoformat(),
            where.end.isoformat(),
        )

    def tables(self) -> list[Table]:
        names = [
            r[0]
            for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
            )
        ]
        return [
            Table(n, tuple(r[1] for r in self.conn.execute(f"PRAGMA table_info({quote(n)})")))
            for n in names
        ]

    def triggers(self, table: str) -> list[str]:
        """The triggers on ``table`` (SQLite names are case-insensitive)."""
        return [
            str(r[0])
            for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND lower(tbl_name) = lower(?) ORDER BY name",
                (table,),
            )
        ]

    def close(self) -> None:
        self.conn.close()


class PostgresSource(_DbSource):
    kind = "postgres"

    def __init__(self, url: str) -> None:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(url)
        host, port, db = info.get("host", "localhost"), info.get("port", "5432"), info.get("dbname")
        self.label = f"postgresql://{host}:{port}/{db or ''}"  # no user, no password
        try:
            self.conn = psycopg.connect(url, connect_timeout=10)
        except psycopg.Error as e:
            raise ScanError(
                "cannot connect to the PostgreSQL database",
                field="SOURCE",
                fix="check the URL, that the server is running, and the credentials",
            ) from e
        self._n = 0

    def cursor(self) -> Any:
        # A server-side cursor: rows arrive BATCH_ROWS at a time, never all at once.
        self._n += 1
        return self.conn.cursor(name=f"carewall_scan_{self._n}")

    def text(self, column: str) -> str:
        return f"{quote(column)}::text"

    def qualified(self, table: str) -> str:
        schema, _, name = table.rpartition(".")
        return f"{quote(schema or 'public')}.{quote(name)}"

    def in_range(self, where: DateRange) -> tuple[str, tuple[str, str]]:
        return f"{quote(where.column)}::date BETWEEN %s::date AND %s::date", (
            where.start.isoformat(),
            where.end.isoformat(),
        )

    def tables(self) -> list[Table]:
        rows = self.conn.execute(
            "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE t.table_type = 'BASE TABLE' AND c.table_schema NOT IN "
            "('pg_catalog', 'information_schema') ORDER BY 1, 2, c.ordinal_position"
        ).fetchall()
        tables: dict[str, list[str]] = {}
        for schema, table, column in rows:
            name = table if schema == "public" else f"{schema}.{table}"
            tables.setdefault(name, []).append(column)
        return [Table(n, tuple(c)) for n, c in tables.items()]

    def triggers(self, table: str) -> list[str]:
        """The user triggers and rewrite rules on ``table`` (not the internal triggers that
        enforce foreign keys, nor a view's ``_RETURN`` rule): either may act on an UPDATE."""
        rows = self.conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND NOT tgisinternal "
            "UNION ALL SELECT rulename FROM pg_rewrite WHERE ev_class = to_regclass(%s) "
            "AND rulename <> '_RETURN' ORDER BY 1",
            (self.qualified(table), self.qualified(table)),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def close(self) -> None:
        self.conn.close()


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
