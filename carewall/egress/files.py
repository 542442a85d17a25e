"""A CSV or Parquet source, read by DuckDB: its table function and its columns.

A CSV file's values are all read as text. Its header is read as written (DuckDB's
``header = false`` read of its first row) and compared with the names DuckDB gives its
columns; a name DuckDB reads as another (a duplicate renamed, a blank's ``columnN`` taken)
is refused (:func:`~carewall.egress.sources.check_unique_names`). A Parquet file's column
types are read from its schema: a non-scalar column is named in
:attr:`~carewall.egress.plan.SourceColumns.nested`, and refused when the mapping names it.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from sqlglot import exp

from carewall.egress.compile import file_table
from carewall.egress.plan import SourceColumns
from carewall.egress.read_errors import read_errors
from carewall.egress.sources import Source, check_unique_names
from carewall.errors import ScanError

__all__ = ["duckdb_file_relation", "file_columns"]


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
        check_unique_names(source, _csv_header(source), names)
        return SourceColumns(names)  # every value read as text
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException):
        raise ScanError(
            "cannot read the Parquet file", field="SOURCE", fix="check it is a Parquet file"
        ) from None
    check_unique_names(source, schema.names, _duckdb_names(source))
    nested = [f.name for f in schema if _nested_arrow(f.type)]
    return SourceColumns(schema.names, nested)
