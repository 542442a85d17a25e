"""The ``spark`` engine: the spark-dialect query on PySpark in local mode (``local[2]``).

Needs the optional extra ``carewall[spark]`` (PySpark) and a Java runtime (17+). The
source file is registered as a temporary view; CSV is read as text with RFC 4180 quoting
(``"`` escaped by doubling), multi-line values allowed, exactly as DuckDB reads it. The
result is coalesced to one partition (so rows keep the file's order; no shuffle happens)
and written as one part file, which is moved to the output path; Spark's folder, its
``_SUCCESS`` marker and checksums are removed. CSV is written as DuckDB writes it: a
header, ``"`` quoting and escaping, NULL as an empty field, values never trimmed.

A session already running in the process (e.g. a test's) is reused; otherwise
:func:`spark_session` starts one with carewall's settings.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq  # type: ignore[import-untyped]

from carewall.egress.compile import count_query, named_table, render, select_query
from carewall.egress.engines import Counts, Format, Progress, duckdb_connection, to_counts
from carewall.egress.files import duckdb_file_relation
from carewall.egress.mapping import EgressMapping
from carewall.egress.plan import EgressPlan
from carewall.egress.sources import Source
from carewall.errors import InputError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["spark_counts", "spark_run", "spark_session"]

_CSV = {"header": "true", "quote": '"', "escape": '"'}


def spark_session() -> SparkSession:
    """The active session, or a new local one (2 threads, no UI, UTC)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise InputError(
            "PySpark is not installed",
            field="engine",
            fix="install carewall[spark] (and a Java 17+ runtime), or use the duckdb engine",
        ) from e
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    return (
        SparkSession.builder.master("local[2]")
        .appName("carewall-egress")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.ansi.enabled", "true")
        .getOrCreate()
    )


def _read(spark: SparkSession, source: Source) -> DataFrame:
    path = str(source.path())
    if source.kind == "parquet":
        return spark.read.parquet(path)
    return (
        spark.read.options(**_CSV)
        .option("multiLine", "true")
        .option("inferSchema", "false")
        .option("mode", "FAILFAST")
        .csv(path)
    )


def _view(spark: SparkSession, source: Source) -> str:
    name = f"cw_source_{uuid.uuid4().hex}"
    _read(spark, source).createOrReplaceTempView(name)
    return name


def spark_counts(mapping: EgressMapping, source: Source) -> Counts:
    spark = spark_session()
    view = _view(spark, source)
    try:
        rows = spark.sql(render(count_query(mapping, named_table(view)), "spark")).collect()
        return to_counts((r[0], r[1]) for r in rows)
    finally:
        spark.catalog.dropTempView(view)


def _rows_in(path: Path, fmt: Format) -> int:
    if fmt == "parquet":
        return int(pq.read_metadata(str(path)).num_rows)
    con = duckdb_connection()
    try:
        rel = duckdb_file_relation(Source.csv(path))
        got = con.execute("SELECT count(*) FROM " + rel.sql("duckdb")).fetchone()
        return int(got[0]) if got else 0
    finally:
        con.close()


def spark_run(
    plan: EgressPlan, source: Source, tmp: Path, fmt: Format, progress: Progress | None
) -> tuple[Counts, int]:
    spark = spark_session()
    view = _view(spark, source)
    folder = tmp.with_name(tmp.name + ".spark")
    try:
        rows = spark.sql(render(count_query(plan.mapping, named_table(view)), "spark")).collect()
        counts = to_counts((r[0], r[1]) for r in rows)
        if progress:
            progress("counted", sum(counts.values()))
        if not sum(counts[c] for c in plan.receiving):
            return counts, 0
        typed = source.kind == "parquet" and fmt == "parquet"  # as on DuckDB: same types
        query = select_query(plan, named_table(view), typed=typed)
        df = spark.sql(render(query, "spark")).coalesce(1)
        if fmt == "parquet":
            df.write.mode("errorifexists").parquet(str(folder))
        else:
            (
                df.write.mode("errorifexists")
                .options(**_CSV)
                .option("ignoreLeadingWhiteSpace", "false")
                .option("ignoreTrailingWhiteSpace", "false")
                .option("lineSep", "\n")
                .csv(str(folder))
            )
        parts = sorted(folder.glob("part-*"))
        if len(parts) != 1:
            raise RuntimeError(f"Spark wrote {len(parts)} part files, expected one")
        parts[0].replace(tmp)
        written = _rows_in(tmp, fmt)
        if progress:
            progress("written", written)
        return counts, written
    finally:
        spark.catalog.dropTempView(view)
        shutil.rmtree(folder, ignore_errors=True)
