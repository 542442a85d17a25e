"""The ``postgres`` engine: the postgres-dialect query runs on the server itself.

Rows come back through a server-side cursor, :data:`~carewall.egress.databases.BATCH_ROWS`
at a time, as text, and go straight into a Parquet or CSV writer (pyarrow): memory holds
one batch. The count and the write see one REPEATABLE READ snapshot. Rows are ordered by
``ctid`` (the table's physical order).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from carewall.egress.compile import count_query, select_query
from carewall.egress.databases import arrow_stream, open_reader
from carewall.egress.engines import Counts, Format, Progress, to_counts
from carewall.egress.mapping import EgressMapping
from carewall.egress.plan import EgressPlan
from carewall.egress.read_errors import read_errors
from carewall.egress.sources import Source

__all__ = ["pg_counts", "pg_run", "write_batches"]


def pg_counts(mapping: EgressMapping, source: Source) -> Counts:
    with open_reader(source) as r, read_errors(source, r):
        cur = r.execute(count_query(mapping, r.table()))
        return to_counts(cur.fetchall())


def write_batches(
    stream: pa.RecordBatchReader, path: Path, fmt: Format, progress: Progress | None
) -> int:
    """Write an Arrow stream to ``path`` (Parquet or CSV with a header); rows written."""
    rows = 0
    writer: Any
    if fmt == "parquet":
        writer = pq.ParquetWriter(str(path), stream.schema)
    else:
        writer = pacsv.CSVWriter(str(path), stream.schema)
    try:
        for batch in stream:
            writer.write_batch(batch)
            rows += batch.num_rows
            if progress:
                progress("written", rows)
    finally:
        writer.close()
    return rows


def pg_run(
    plan: EgressPlan, source: Source, tmp: Path, fmt: Format, progress: Progress | None
) -> tuple[Counts, int]:
    with open_reader(source) as r, read_errors(source, r):
        counts = to_counts(r.execute(count_query(plan.mapping, r.table())).fetchall())
        if progress:
            progress("counted", sum(counts.values()))
        if not sum(counts[c] for c in plan.receiving):
            return counts, 0
        cur = r.execute(select_query(plan, r.table(), order=r.order()))
        written = write_batches(arrow_stream(cur, plan.output_columns, source), tmp, fmt, progress)
        return counts, written
