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

Column names. A source whose column names are not unique, compared as DuckDB and Spark
resolve identifiers (case aside), is refused: DuckDB would read the second ``name`` as
``name_1``, so a mapping checked against the source's own names would read another
column. A CSV header is read as written (DuckDB's ``header = false`` read of its first
row) and compared with the names DuckDB gives its columns; a name DuckDB reads as another
(a duplicate renamed, a blank's ``columnN`` taken) is refused too. Each column's type is
read where it has one (Parquet, PostgreSQL): a non-scalar column is named in
:attr:`~carewall.egress.plan.SourceColumns.nested`, and refused when the mapping names it.

Read errors (:func:`read_errors`). DuckDB, ``sqlite3``, ``psycopg`` and pyarrow quote the
offending row or value in their messages (DuckDB's CSV reader prints the whole line). Every
read is wrapped: the error becomes an :class:`~carewall.errors.InputError` naming the
source and the kind of problem (with the CSV line number, or the column and row of
undecodable text), never a value from the data, and without the library's exception as
its cause. SQLite text is fetched as bytes and decoded here, so that a value that is not
UTF-8 is found by its column and row without its text.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from sqlglot import exp

from carewall.egress.compile import file_table, named_table
from carewall.egress.mapping import shown_name
from carewall.egress.plan import SourceColumns, first_repeated
from carewall.errors import CarewallError, InputError, ScanError

__all__ = [
    "BATCH_ROWS",
    "DbReader",
    "Source",
    "SourceKind",
    "arrow_stream",
    "duckdb_relation",
    "open_reader",
    "read_errors",
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


def duckdb_file_relation(source: Source, *, header: bool = True) -> exp.Expression:
    """The DuckDB table function reading a file source (CSV columns read as text;
    ``header=False``: the header row read as a row)."""
    path = str(source.path())
    if source.kind == "parquet":
        return file_table("read_parquet", path)
    text = exp.Literal.string
    return file_table(
        "read_csv",
        path,
        header=exp.Boolean(this=header),
        all_varchar=exp.true(),
        delim=text(","),
        quote=text('"'),
        escape=text('"'),
    )


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


def _unique(source: Source, names: Sequence[str], read_as: Sequence[str] | None = None) -> None:
    """Refuse names that are not unique case aside, or that DuckDB reads under another name
    (``read_as``: DuckDB's names for the same columns, in order)."""
    repeated = first_repeated(names)
    if repeated is not None:
        raise InputError(
            f"the source {source.label} has several columns named {shown_name(repeated)} "
            "(case aside)",
            field="SOURCE",
            fix="rename its columns so that every name is unique, case aside "
            "(DuckDB would read the second under another name)",
        )
    if read_as is None:
        return
    if len(read_as) != len(names):
        raise InputError(
            f"the source {source.label} has {len(names)} column names but DuckDB reads "
            f"{len(read_as)} columns",
            field="SOURCE",
            fix="give every column a unique name in the header",
        )
    for name, got in zip(names, read_as, strict=True):
        if name.strip() and got != name.strip():
            raise InputError(
                f"the source {source.label}'s column {shown_name(name)} is read as "
                f"{shown_name(got)}",
                field="SOURCE",
                fix="give every column a unique, non-blank name (case aside)",
            )


def _duckdb_names(source: Source) -> list[str]:
    rel = exp.select(exp.Star()).from_(duckdb_file_relation(source))
    con = duckdb.connect()
    try:
        with read_errors(source):
            return [str(r[0]) for r in con.execute("DESCRIBE " + rel.sql("duckdb")).fetchall()]
    finally:
        con.close()


def _csv_header(source: Source) -> list[str]:
    """The CSV header's names as written (DuckDB's parse of the first row, no renaming)."""
    rel = duckdb_file_relation(source, header=False)
    con = duckdb.connect()
    try:
        with read_errors(source):
            row = con.execute(exp.select(exp.Star()).from_(rel).limit(1).sql("duckdb")).fetchone()
    finally:
        con.close()
    return ["" if v is None else str(v) for v in (row or ())]


def _nested_arrow(t: pa.DataType) -> bool:
    """A type holding more than one value per row, or a JSON document."""
    if isinstance(t, pa.ExtensionType):
        if t.extension_name == "arrow.json":
            return True
        t = t.storage_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    return bool(pa.types.is_nested(t))


def file_columns(source: Source) -> SourceColumns:
    path = source.path()
    if source.kind == "csv":
        names = _duckdb_names(source)
        _unique(source, _csv_header(source), names)
        return SourceColumns(names)  # every value read as text
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException):
        raise ScanError(
            "cannot read the Parquet file", field="SOURCE", fix="check it is a Parquet file"
        ) from None
    _unique(source, schema.names, _duckdb_names(source))
    nested = [f.name for f in schema if _nested_arrow(f.type)]
    return SourceColumns(schema.names, nested)


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
        _unique(self.source, names)
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
    a value (:func:`read_errors`), and passed to ``failed`` first: DuckDB, pulling the
    stream, reports it in a message of its own."""
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


@contextmanager
def open_reader(source: Source) -> Iterator[DbReader]:
    reader = DbReader(source)
    try:
        yield reader
    finally:
        reader.close()


def source_columns(source: Source) -> SourceColumns:
    """The source's column names, in its order (unique, case aside), with its non-scalar
    columns named (:class:`~carewall.egress.plan.SourceColumns`)."""
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
