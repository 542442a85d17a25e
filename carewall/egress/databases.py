"""A SQLite or PostgreSQL table, read through its Python driver, as text, in Arrow batches.

DuckDB's SQLite and PostgreSQL scanners are extensions downloaded at run time (unreachable
here), so a table is read through ``sqlite3`` or ``psycopg`` (with a server-side cursor), as
text, in Arrow record batches of :data:`BATCH_ROWS` rows: memory stays bounded whatever the
size.

Row order. A database table has no order of its own, so carewall reads it in physical
order: SQLite by ``rowid`` (a WITHOUT ROWID table in its scan order), PostgreSQL by
``ctid``; a table loaded from a file is then in the file's order. Both reads of one run
(counting, then writing) see one snapshot: one SQLite read transaction, one PostgreSQL
REPEATABLE READ, READ ONLY transaction.

Column names and types. A table's names are refused unless unique, case aside
(:func:`~carewall.egress.sources.check_unique_names`); a PostgreSQL column that is not a
scalar is named in :attr:`~carewall.egress.plan.SourceColumns.nested`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
from sqlglot import exp

from carewall.egress.compile import named_table
from carewall.egress.mapping import shown_name
from carewall.egress.plan import SourceColumns
from carewall.egress.read_errors import read_errors
from carewall.egress.sources import Source, check_unique_names
from carewall.errors import CarewallError, InputError, ScanError
from carewall.pgconnect import connect_postgres

__all__ = ["BATCH_ROWS", "DbReader", "arrow_stream", "open_reader"]

BATCH_ROWS = 65_536

# Each column's name, and whether it is not a scalar: an array, a composite (row) type,
# hstore, json or jsonb, or a domain over one of them.
_PG_COLUMNS = """
SELECT c.column_name,
       c.data_type IN ('ARRAY', 'json', 'jsonb')
       OR c.udt_name = 'hstore'
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_type t
                  JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
                  WHERE n.nspname = c.udt_schema AND t.typname = c.udt_name
                    AND t.typtype = 'c')
FROM information_schema.columns c
WHERE c.table_schema = %s AND c.table_name = %s
ORDER BY c.ordinal_position
"""


class DbReader:
    """One database connection inside one read-only snapshot, read as text in batches."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._n = 0
        self.failure: CarewallError | None = None  # why a stream of this reader stopped
        self.conn: Any
        if source.kind == "sqlite":
            path = source.path()
            # check_same_thread: DuckDB pulls an Arrow stream from its own thread.
            self.conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
            self.conn.text_factory = bytes  # decoded by arrow_stream: see read_errors
            self.conn.execute("BEGIN")
        else:
            self.conn = connect_postgres(source.location)
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    @property
    def dialect(self) -> str:
        return "sqlite" if self.source.kind == "sqlite" else "postgres"

    def table(self) -> exp.Table:
        assert self.source.table is not None
        return named_table(self.source.table, self.source.schema)

    def order(self) -> exp.Expression:
        return exp.column("rowid" if self.source.kind == "sqlite" else "ctid")

    def columns(self) -> SourceColumns:
        """The table's column names, in order (refused unless unique, case aside), and
        which are not scalar (PostgreSQL arrays, composite types, hstore, JSON)."""
        nested: list[str] = []
        with read_errors(self.source, self):
            if self.source.kind == "sqlite":
                rows = self.conn.execute(
                    "SELECT name FROM pragma_table_info(?) ORDER BY cid", (self.source.table,)
                ).fetchall()
                names = [r[0].decode("utf-8") if isinstance(r[0], bytes) else str(r[0])
                         for r in rows]  # fmt: skip
            else:
                rows = self.conn.execute(_PG_COLUMNS, (self.source.schema, self.source.table))
                rows = rows.fetchall()
                names = [str(r[0]) for r in rows]
                nested = [str(r[0]) for r in rows if r[1]]
        if not names:
            raise InputError(
                f"the database has no {self.source.label}",
                field="SOURCE",
                fix="name an existing table (and schema) the account may read",
            )
        check_unique_names(self.source, names)
        return SourceColumns(names, nested)

    def cursor(self) -> Any:
        if self.source.kind == "sqlite":
            return self.conn.cursor()
        self._n += 1  # a server-side cursor: rows arrive a batch at a time
        return self.conn.cursor(name=f"carewall_egress_{self._n}")

    def execute(self, query: exp.Expression) -> Any:
        cur = self.cursor()
        try:
            cur.execute(query.sql(self.dialect))
        except Exception as e:
            cur.close()
            raise ScanError(
                f"the database refused to read the {self.source.label} ({type(e).__name__})",
                field="SOURCE",
                fix="check the account may read it",
            ) from e
        return cur

    def text_batches(self, columns: Sequence[str]) -> pa.RecordBatchReader:
        """``columns`` as text, in physical order, as a stream of Arrow batches."""
        items = [exp.alias_(exp.cast(exp.column(c, quoted=True), "text"), c, quoted=True)
                 for c in columns]  # fmt: skip
        base = exp.select(*items).from_(self.table())
        try:
            cur = self.execute(base.order_by(self.order()))
        except ScanError:
            if self.source.kind != "sqlite":
                raise
            cur = self.execute(base)  # a WITHOUT ROWID table: its own (key) order
        return arrow_stream(
            cur, columns, self.source, binary=self.source.kind == "sqlite", failed=self._failed
        )

    def _failed(self, error: CarewallError) -> None:
        self.failure = error

    def close(self) -> None:
        try:
            self.conn.rollback() if self.source.kind == "postgres" else self.conn.execute("END")
        finally:
            self.conn.close()


@contextmanager
def open_reader(source: Source) -> Iterator[DbReader]:
    reader = DbReader(source)
    try:
        yield reader
    finally:
        reader.close()


def _undecodable(source: Source, column: str, values: Sequence[Any], first: int) -> InputError:
    """The error for a batch of ``column`` holding bytes that are not UTF-8 (its row: the
    first such value's, counted from 1 in the order read)."""
    row = first
    for i, v in enumerate(values):
        if isinstance(v, bytes):
            try:
                v.decode("utf-8")
            except UnicodeDecodeError:
                row = first + i
                break
    return InputError(
        f"cannot read the source {source.label}: the text in column {shown_name(column)} of row "
        f"{row} (in the order read) is not valid UTF-8",
        field="SOURCE",
        fix="store the table's text as UTF-8",
    )


def arrow_stream(
    cur: Any,
    columns: Sequence[str],
    source: Source,
    *,
    binary: bool = False,
    failed: Callable[[CarewallError], None] | None = None,
) -> pa.RecordBatchReader:
    """A DB-API cursor's text rows as Arrow batches of :data:`BATCH_ROWS` rows.

    ``binary``: the cursor gives text as UTF-8 bytes (SQLite, see :class:`DbReader`), decoded
    here. Any error reading the rows is raised as an InputError naming ``source`` and never
    a value (:func:`~carewall.egress.read_errors.read_errors`), and passed to ``failed``
    first: DuckDB, pulling the stream, reports it in a message of its own."""
    schema = pa.schema([pa.field(c, pa.string()) for c in columns])

    def text(column: str, values: Sequence[Any], first: int) -> pa.Array:
        if not binary:
            return pa.array(values, pa.string())
        try:
            return pa.array(values, pa.binary()).cast(pa.string())
        except pa.ArrowInvalid:
            raise _undecodable(source, column, values, first) from None

    def batches() -> Iterator[pa.RecordBatch]:
        n = 0
        try:
            with read_errors(source):
                while rows := cur.fetchmany(BATCH_ROWS):
                    cols = zip(*rows, strict=True)
                    arrays = [text(c, v, n + 1) for c, v in zip(columns, cols, strict=True)]
                    n += len(rows)
                    yield pa.RecordBatch.from_arrays(arrays, schema=schema)
        except CarewallError as e:
            if failed is not None:
                failed(e)
            raise
        finally:
            cur.close()

    return pa.RecordBatchReader.from_batches(schema, batches())
