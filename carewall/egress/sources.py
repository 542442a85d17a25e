"""Where the rows come from: a CSV or Parquet file, a SQLite table, or a PostgreSQL table.

Files are read by the engines' own readers. DuckDB's SQLite and PostgreSQL scanners are
extensions downloaded at run time (unreachable here), so database tables are read through
their Python drivers (``sqlite3``; ``psycopg`` with a server-side cursor), as text, in
Arrow record batches of :data:`BATCH_ROWS` rows: memory stays bounded whatever the size.

Row order. A file's rows are written in the file's order. A database table has no order
of its own, so carewall reads it in physical order: SQLite by ``rowid`` (a WITHOUT ROWID
table in its scan order), PostgreSQL by ``ctid``; a table loaded from a file is then in the
file's order. Both reads of one run (counting, then writing) see one snapshot: one SQLite
read transaction, one PostgreSQL REPEATABLE READ, READ ONLY transaction.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from sqlglot import exp

from carewall.egress.compile import file_table, named_table
from carewall.errors import InputError, ScanError

__all__ = [
    "BATCH_ROWS",
    "DbReader",
    "Source",
    "SourceKind",
    "arrow_stream",
    "duckdb_relation",
    "open_reader",
    "source_columns",
]

BATCH_ROWS = 65_536
SourceKind = Literal["csv", "parquet", "sqlite", "postgres"]


@dataclass(frozen=True)
class Source:
    """A dataset to filter. Build one with :meth:`csv`, :meth:`parquet`, :meth:`sqlite` or
    :meth:`postgres`; ``location`` is a file path or a ``postgresql://`` URL."""

    kind: SourceKind
    location: str
    table: str | None = None
    schema: str | None = None

    @classmethod
    def csv(cls, path: Path | str) -> Source:
        return cls("csv", str(path))

    @classmethod
    def parquet(cls, path: Path | str) -> Source:
        return cls("parquet", str(path))

    @classmethod
    def sqlite(cls, path: Path | str, table: str) -> Source:
        return cls("sqlite", str(path), table)

    @classmethod
    def postgres(cls, url: str, table: str, schema: str = "public") -> Source:
        return cls("postgres", url, table, schema)

    @property
    def is_file(self) -> bool:
        return self.kind in ("csv", "parquet")

    @property
    def label(self) -> str:
        """A public name: the file's name, or the table (never a URL or credentials)."""
        if self.is_file:
            return Path(self.location).name
        return f"{self.kind} table {self.table!r}"

    def path(self) -> Path:
        p = Path(self.location)
        if not p.is_file():
            raise InputError(
                f"no file at the source path ({self.label})", field="SOURCE", fix="check the path"
            )
        return p


def duckdb_file_relation(source: Source) -> exp.Expression:
    """The DuckDB table function reading a file source (CSV columns read as text)."""
    path = str(source.path())
    if source.kind == "parquet":
        return file_table("read_parquet", path)
    text = exp.Literal.string
    return file_table(
        "read_csv",
        path,
        header=exp.true(),
        all_varchar=exp.true(),
        delim=text(","),
        quote=text('"'),
        escape=text('"'),
    )


def _csv_columns(path: Path) -> tuple[str, ...]:
    rel = exp.select(exp.Star()).from_(duckdb_file_relation(Source.csv(path)))
    con = duckdb.connect()
    try:
        rows = con.execute("DESCRIBE " + rel.sql("duckdb")).fetchall()
    except duckdb.Error as e:
        raise ScanError(
            f"cannot read the CSV file ({type(e).__name__})",
            field="SOURCE",
            fix="check it is a comma-separated CSV file with a header row",
        ) from e
    finally:
        con.close()
    return tuple(str(r[0]) for r in rows)


def file_columns(source: Source) -> tuple[str, ...]:
    path = source.path()
    if source.kind == "csv":
        return _csv_columns(path)
    try:
        return tuple(pq.read_schema(path).names)
    except (OSError, pa.ArrowException) as e:
        raise ScanError(
            "cannot read the Parquet file", field="SOURCE", fix="check it is a Parquet file"
        ) from e


class DbReader:
    """One database connection inside one read-only snapshot, read as text in batches."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._n = 0
        self.conn: Any
        if source.kind == "sqlite":
            path = source.path()
            # check_same_thread: DuckDB pulls an Arrow stream from its own thread.
            self.conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
            self.conn.execute("BEGIN")
        else:
            import psycopg

            try:
                self.conn = psycopg.connect(source.location, connect_timeout=10)
            except psycopg.Error as e:
                raise ScanError(
                    "cannot connect to the PostgreSQL database",
                    field="SOURCE",
                    fix="check the URL, that the server is running, and the credentials",
                ) from e
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    @property
    def dialect(self) -> str:
        return "sqlite" if self.source.kind == "sqlite" else "postgres"

    def table(self) -> exp.Table:
        assert self.source.table is not None
        return named_table(self.source.table, self.source.schema)

    def order(self) -> exp.Expression:
        return exp.column("rowid" if self.source.kind == "sqlite" else "ctid")

    def columns(self) -> tuple[str, ...]:
        if self.source.kind == "sqlite":
            rows = self.conn.execute(
                "SELECT name FROM pragma_table_info(?) ORDER BY cid", (self.source.table,)
            ).fetchall()
        else:
            rows = self.conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                (self.source.schema, self.source.table),
            ).fetchall()
        if not rows:
            raise InputError(
                f"the database has no {self.source.label}",
                field="SOURCE",
                fix="name an existing table (and schema) the account may read",
            )
        return tuple(str(r[0]) for r in rows)

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
        return arrow_stream(cur, columns)

    def close(self) -> None:
        try:
            self.conn.rollback() if self.source.kind == "postgres" else self.conn.execute("END")
        finally:
            self.conn.close()


def arrow_stream(cur: Any, columns: Sequence[str]) -> pa.RecordBatchReader:
    """A DB-API cursor's text rows as Arrow batches of :data:`BATCH_ROWS` rows."""
    schema = pa.schema([pa.field(c, pa.string()) for c in columns])

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            while rows := cur.fetchmany(BATCH_ROWS):
                arrays = [pa.array(col, pa.string()) for col in zip(*rows, strict=True)]
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)
        finally:
            cur.close()

    return pa.RecordBatchReader.from_batches(schema, batches())


@contextmanager
def open_reader(source: Source) -> Iterator[DbReader]:
    reader = DbReader(source)
    try:
        yield reader
    finally:
        reader.close()


def source_columns(source: Source) -> tuple[str, ...]:
    """The source's column names, in its order."""
    if source.is_file:
        return file_columns(source)
    with open_reader(source) as r:
        return r.columns()


def duckdb_relation(
    con: duckdb.DuckDBPyConnection, source: Source, reader: DbReader | None, columns: Sequence[str]
) -> exp.Expression:
    """A FROM-able expression in ``con`` for ``source``: a file reader, or a registered stream
    of ``columns`` read through ``reader``."""
    if source.is_file:
        return duckdb_file_relation(source)
    assert reader is not None
    name = f"cw_stream_{uuid.uuid4().hex}"
    con.register(name, reader.text_batches(columns))
    return named_table(name)
