"""SQLite and PostgreSQL sources (see :mod:`carewall.clean.sources`).

DuckDB's SQLite and PostgreSQL scanners are extensions it downloads from its own site at run
time, which is unreachable here and a binary carewall could not pin; so databases are read
through their Python drivers (``sqlite3``; ``psycopg`` with a server-side cursor) and
streamed into DuckDB as Arrow record batches of :data:`~carewall.clean.sources.BATCH_ROWS`
rows: memory stays bounded whatever the size. A database source keeps one connection, so a
purge can re-scan inside its own transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]

from carewall.clean.sources import (
    BATCH_ROWS,
    DateRange,
    Progress,
    Table,
    check_date_column,
    quote,
)
from carewall.errors import ScanError
from carewall.pgconnect import connect_postgres

__all__ = ["PostgresSource", "SqliteSource"]


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

    def select(
        self,
        table: Table,
        columns: Sequence[str],
        where: DateRange | None,
        limit: int | None = None,
    ) -> Any:
        check_date_column(table, where)
        cols = ", ".join(self.text(c) for c in columns) or "1"
        sql = f"SELECT {cols} FROM {self.qualified(table.name)}"
        params: tuple[str, ...] = ()
        if where is not None:
            cond, params = self.in_range(where)
            sql += f" WHERE {cond}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
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
        *,
        limit: int | None = None,
        batch: int = BATCH_ROWS,
    ) -> str:
        cur = self.select(table, columns, where, limit)
        n = max(1, len(columns))
        schema = pa.schema([(f"c{i}", pa.string()) for i in range(n)])

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                while rows := cur.fetchmany(batch):
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
        from psycopg.conninfo import conninfo_to_dict

        # Connect first: a URL psycopg cannot parse is then a ScanError, never the parser's
        # own error, which quotes the URL (password and all).
        self.conn = connect_postgres(url)
        info = conninfo_to_dict(url)
        host, port, db = info.get("host", "localhost"), info.get("port", "5432"), info.get("dbname")
        self.label = f"postgresql://{host}:{port}/{db or ''}"  # no user, no password
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
