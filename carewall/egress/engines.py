"""Running a plan: count the rows per group, then write only what may go, on one engine.

Engines (one compiled query, :mod:`carewall.egress.compile`, rendered per dialect):

- ``duckdb`` (default), every source. Files are read by DuckDB and the output streamed with
  ``COPY (query) TO …`` under a memory limit (spilling to a temporary directory);
  database tables are streamed in as Arrow batches (:mod:`carewall.egress.databases`).
- ``postgres``, PostgreSQL tables: the query runs on the server; its rows come back through
  a server-side cursor, a batch at a time, into a Parquet or CSV writer (pyarrow).
- ``spark``, CSV and Parquet files: PySpark local mode (:mod:`carewall.egress.spark`).

Every run reads the source twice in one snapshot: a GROUP BY pass over the flag columns
(rows per group), then the write. When no row may carry anything (an empty plan, or no rows
of a receiving group) nothing is written and no file exists afterwards: the result's
``path`` and ``sha256`` are None. Otherwise the file is written beside ``out_path`` under a
temporary name, its row count checked against the count pass (a source that changed in
between is an error and nothing is kept), then renamed into place.

On DuckDB, a Parquet source written to Parquet gets one output row group per source row
group where it can (:func:`aligned_row_groups`): DuckDB then writes each filtered batch as
it is instead of copying it again to merge it with the next.

Output, the same on every engine: the columns are :attr:`EgressPlan.output_columns`, every
value text (NULL where the row's group may not have the column); rows in source order
(files: the file's order; SQLite: ``rowid``; PostgreSQL: ``ctid``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB  # noqa: F401 - loaded on import, not in the first run

from carewall.egress.compile import count_query, group_expression, render, select_query
from carewall.egress.databases import DbReader
from carewall.egress.flags import decode_flag, raw_group_expression
from carewall.egress.mapping import EgressMapping
from carewall.egress.plan import GROUPS, WEIGHTS, EgressPlan, check_source_columns
from carewall.egress.read_errors import read_errors
from carewall.egress.reading import duckdb_relation, source_columns
from carewall.egress.sources import Source
from carewall.errors import InputError, StorageError
from carewall.filehash import file_sha256
from carewall.policy.facts import SubjectFacts

__all__ = [
    "ENGINES",
    "FORMATS",
    "Counts",
    "EngineName",
    "Format",
    "Progress",
    "RunResult",
    "aligned_row_groups",
    "count_groups",
    "duckdb_connection",
    "run",
    "to_counts",
]

EngineName = Literal["duckdb", "spark", "postgres"]
Format = Literal["parquet", "csv"]
ENGINES: tuple[EngineName, ...] = ("duckdb", "spark", "postgres")
FORMATS: tuple[Format, ...] = ("parquet", "csv")
# progress(phase, rows): phase "counted" once, then "written" (once, or per batch)
Progress = Callable[[str, int], None]
Counts = dict[int, int]  # group code -> rows
ROW_GROUP_ROWS = 122_880  # DuckDB's default Parquet row group (rows)
VECTOR_ROWS = 2_048  # DuckDB's vector (rows)


@dataclass(frozen=True)
class RunResult:
    """What a run wrote. ``counts`` holds every group's rows in the source (all 8)."""

    engine: EngineName
    format: Format
    counts: Mapping[SubjectFacts, int]
    receiving: tuple[int, ...]
    path: Path | None
    sha256: str | None
    bytes: int = 0
    columns: tuple[str, ...] = field(default=())

    @property
    def rows_by_group(self) -> dict[SubjectFacts, int]:
        """Rows written, per receiving group."""
        return {GROUPS[c]: self.counts.get(GROUPS[c], 0) for c in self.receiving}

    @property
    def rows(self) -> int:
        return sum(self.rows_by_group.values())

    @property
    def left_out(self) -> int:
        return sum(self.counts.values()) - self.rows

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "format": self.format,
            "rows": self.rows,
            "left_out": self.left_out,
            "columns": list(self.columns),
            "groups": [
                {"facts": f.to_json(), "rows": n, "written": f in self.rows_by_group}
                for f, n in self.counts.items()
            ],
            "path": str(self.path) if self.path else None,
            "sha256": self.sha256,
            "bytes": self.bytes,
        }


def duckdb_connection(memory_limit: str = "1GB") -> duckdb.DuckDBPyConnection:
    """DuckDB with bounded memory (spilling to a temporary folder) and source order kept."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = true")
    spill = exp.Literal.string(tempfile.gettempdir()).sql("duckdb")
    con.execute(f"SET temp_directory = {spill}")
    return con


def to_counts(rows: Iterable[tuple[Any, Any]]) -> Counts:
    counts = dict.fromkeys(range(len(GROUPS)), 0)
    for code, n in rows:
        counts[int(code)] = int(n)
    return counts


def _check_engine(source: Source, engine: str) -> None:
    if engine not in ENGINES:
        raise InputError("unknown engine", field="engine", fix=f"use one of {', '.join(ENGINES)}")
    if engine == "postgres" and source.kind != "postgres":
        raise InputError(
            "the postgres engine runs on the PostgreSQL server: the source must be a "
            "PostgreSQL table",
            field="engine",
            fix="use the duckdb engine (the default) for files and SQLite",
        )
    if engine == "spark" and not source.is_file:
        raise InputError(
            "the spark engine reads CSV and Parquet files only",
            field="engine",
            fix="use the duckdb or postgres engine for database tables",
        )


# ----- DuckDB ---------------------------------------------------------------------------


def _duck_counts(
    con: duckdb.DuckDBPyConnection, mapping: EgressMapping, source: Source, r: DbReader | None
) -> tuple[Counts, exp.Expression]:
    """:func:`_duck_count_rows`, any read error a clean one (:func:`read_errors`)."""
    with read_errors(source, r):
        return _duck_count_rows(con, mapping, source, r)


def _duck_count_rows(
    con: duckdb.DuckDBPyConnection, mapping: EgressMapping, source: Source, r: DbReader | None
) -> tuple[Counts, exp.Expression]:
    """Rows per group, and the group code the filter computes from the flags.

    A Parquet source: the SQL form as a lookup (``fact_code(…, lists=True)``), evaluated
    once per entry of each column chunk's dictionary, counted with ``GROUP BY`` on the
    code. Any other source (plain vectors: CSV, database rows): each distinct raw flag value
    is decoded once (:mod:`carewall.egress.flags`) and the filter looks raw values up; a
    flag of a type the decoder does not read falls back to the SQL form's lookup."""
    flags = mapping.fact_columns
    if flags and source.kind != "parquet":
        rel = duckdb_relation(con, source, r, flags)
        ids = [exp.column(c, quoted=True) for c in flags]
        q = exp.select(*ids, exp.Count(this=exp.Star())).from_(rel).group_by(*ids)
        rows = con.execute(render(q, "duckdb")).fetchall()
        values: dict[str, set[Any]] = {c: set() for c in flags}
        for row in rows:
            for c, v in zip(flags, row[:-1], strict=True):
                values[c].add(v)
        group = raw_group_expression(mapping, values)
        if group is not None:
            counts = dict.fromkeys(range(len(GROUPS)), 0)
            for row in rows:
                raw = dict(zip(flags, row[:-1], strict=True))
                code = 0
                for fact, src in mapping.facts:
                    bit = src if isinstance(src, bool) else decode_flag(fact, raw[src])
                    code += WEIGHTS[fact] if bit else 0
                counts[code] += int(row[-1])
            return counts, group
    group = group_expression(mapping, lists=True)
    rel = duckdb_relation(con, source, r, flags or (mapping.subject_ref,))
    rows = con.execute(render(count_query(mapping, rel, group=group), "duckdb")).fetchall()
    return to_counts(rows), group


def aligned_row_groups(source_rows: Sequence[int], kept: int, total: int) -> int | None:
    """A Parquet ``ROW_GROUP_SIZE`` under which DuckDB writes the kept rows of each source
    row group as one output row group, as a bare COPY writes each source row group, or None
    for DuckDB's default.

    DuckDB's ordered COPY takes one batch per source row group. A batch holding between
    ``ROW_GROUP_SIZE - 2047`` and ``ROW_GROUP_SIZE`` rows is written as it is; any other is
    copied again, merged with its neighbours or split, into batches of that size (on two
    threads, 15% more instructions for the whole write of a filtered 2M-row extract). When
    the source's row groups are all of one size ``S`` (the last may be shorter) and the
    groups' rows are spread evenly, each batch holds close to ``S·kept/total`` rows: half a
    vector more covers the spread. Only between half and the whole of the default row group
    (:data:`ROW_GROUP_ROWS`). Otherwise, or when the rows are not spread evenly (batches
    are then merged as before), nothing changes but where the row groups begin and end.
    """
    if len(source_rows) < 2 or not 0 < kept < total:
        return None
    size = source_rows[0]
    if any(n != size for n in source_rows[:-1]) or source_rows[-1] > size:
        return None
    rows = -(-size * kept // total) + VECTOR_ROWS // 2
    return rows if ROW_GROUP_ROWS // 2 <= rows < ROW_GROUP_ROWS else None


def _parquet_row_groups(source: Source) -> list[int]:
    meta = pq.read_metadata(source.path())
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def _duck_run(
    plan: EgressPlan, source: Source, tmp: Path, fmt: Format, progress: Progress | None
) -> tuple[Counts, int]:
    con = duckdb_connection()
    reader = None if source.is_file else DbReader(source)
    try:
        counts, group = _duck_counts(con, plan.mapping, source, reader)
        if progress:
            progress("counted", sum(counts.values()))
        kept = sum(counts[c] for c in plan.receiving)
        if not kept:
            return counts, 0
        needed = tuple(dict.fromkeys(plan.output_columns + plan.mapping.fact_columns))
        typed = source.kind == "parquet" and fmt == "parquet"
        rel = duckdb_relation(con, source, reader, needed)
        query = select_query(plan, rel, typed=typed, group=group)
        params = [exp.CopyParameter(this=exp.var("FORMAT"), expression=exp.var(fmt))]
        if fmt == "csv":
            params.append(exp.CopyParameter(this=exp.var("HEADER"), expression=exp.true()))
        elif source.kind == "parquet":
            rows = aligned_row_groups(_parquet_row_groups(source), kept, sum(counts.values()))
            if rows is not None:
                size = exp.Literal.number(rows)
                params.append(exp.CopyParameter(this=exp.var("ROW_GROUP_SIZE"), expression=size))
        copy = exp.Copy(
            this=query.subquery(copy=False),
            kind=False,
            files=[exp.Literal.string(str(tmp))],
            params=params,
        )
        with read_errors(source, reader):
            got = con.execute(copy.sql("duckdb")).fetchone()
        written = int(got[0]) if got else 0
        if progress:
            progress("written", written)
        return counts, written
    finally:
        con.close()
        if reader is not None:
            reader.close()


# ----- the public functions ---------------------------------------------------------------


def _checked_columns(mapping: EgressMapping, source: Source) -> tuple[str, ...]:
    cols = source_columns(source)
    check_source_columns(mapping, cols)
    return cols


def count_groups(
    source: Source, mapping: EgressMapping, engine: EngineName = "duckdb"
) -> dict[SubjectFacts, int]:
    """Rows per combination of subject facts (all 8, zeros included), in one GROUP BY pass."""
    _check_engine(source, engine)
    _checked_columns(mapping, source)
    if engine == "spark":
        from carewall.egress.spark import spark_counts

        counts = spark_counts(mapping, source)
    elif engine == "postgres":
        from carewall.egress.postgres import pg_counts

        counts = pg_counts(mapping, source)
    else:
        con = duckdb_connection()
        reader = None if source.is_file else DbReader(source)
        try:
            counts, _ = _duck_counts(con, mapping, source, reader)
        finally:
            con.close()
            if reader is not None:
                reader.close()
    return {GROUPS[c]: n for c, n in counts.items()}


def _check_out(out_path: Path, overwrite: bool) -> None:
    if not out_path.parent.is_dir():
        raise InputError("the output folder does not exist", field="out", fix="create it first")
    if out_path.exists() and not (overwrite and out_path.is_file()):
        raise InputError(
            "the output file already exists",
            field="out",
            fix="choose a new file name (carewall never overwrites an extract)",
        )


def run(
    plan: EgressPlan,
    source: Source,
    out_path: Path | str,
    engine: EngineName = "duckdb",
    fmt: Format = "parquet",
    progress: Progress | None = None,
    *,
    overwrite: bool = False,
) -> RunResult:
    """Write the permitted columns of the permitted rows of ``source`` to ``out_path``.

    An empty plan reads no row and writes no file (``counts`` is then empty). A run whose
    source holds no row of a receiving group writes no file either.
    """
    out = Path(out_path)
    if fmt not in FORMATS:
        raise InputError("unknown output format", field="format", fix="use parquet or csv")
    _check_engine(source, engine)
    _check_out(out, overwrite)
    _checked_columns(plan.mapping, source)
    nothing = RunResult(engine, fmt, {}, (), None, None)
    if plan.empty:
        return nothing
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # the engines create it (Spark refuses an existing path)
    try:
        if engine == "spark":
            from carewall.egress.spark import spark_run

            counts, written = spark_run(plan, source, tmp, fmt, progress)
        elif engine == "postgres":
            from carewall.egress.postgres import pg_run

            counts, written = pg_run(plan, source, tmp, fmt, progress)
        else:
            counts, written = _duck_run(plan, source, tmp, fmt, progress)
        by_facts = {GROUPS[c]: n for c, n in counts.items()}
        expected = sum(counts[c] for c in plan.receiving)
        if expected == 0:
            return RunResult(engine, fmt, by_facts, plan.receiving, None, None)
        if written != expected:
            raise StorageError(
                "the source changed while it was read (the rows written differ from the "
                "rows counted); nothing was kept",
                field="SOURCE",
                fix="run again on a source that is not being written to",
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return RunResult(
        engine,
        fmt,
        by_facts,
        plan.receiving,
        out,
        file_sha256(out),
        out.stat().st_size,
        plan.output_columns,
    )
