"""Reading any source, file or table: its columns, and a relation DuckDB can select from.

A file is read by DuckDB's own readers (:mod:`carewall.egress.files`); a table through its
driver, streamed into DuckDB as Arrow batches (:mod:`carewall.egress.databases`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import duckdb
from sqlglot import exp

from carewall.egress.compile import named_table
from carewall.egress.databases import DbReader, open_reader
from carewall.egress.files import duckdb_file_relation, file_columns
from carewall.egress.plan import SourceColumns
from carewall.egress.sources import Source

__all__ = ["duckdb_relation", "source_columns"]


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
