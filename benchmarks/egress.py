"""Egress benchmark: ``carewall egress`` on DuckDB beside a bare DuckDB COPY (the ceiling).

One run builds, in a temporary directory, the synthetic pupils extract
(:mod:`carewall.egress.synthetic`) as a 10-million-row Parquet file, then times, each in a
fresh process (so peak RSS is its own):

- carewall: ``run(plan, Source.parquet(…), out)`` on DuckDB: the count pass over the flag
  columns, then the filter (CASE per column, the WHERE on the group), written to Parquet;
- the ceiling: ``COPY (SELECT <the same permitted columns> FROM read_parquet(…)) TO …``
  in a bare DuckDB connection: no flags read, no filter, no casts;
- Spark: the same plan with ``engine="spark"`` (PySpark ``local[2]``), JVM start included.

Rows/s are source rows per second (both read every row; carewall writes fewer).
Target: carewall >= 80% of the ceiling's rows/s, memory bounded (both stream).

    .venv/bin/python benchmarks/egress.py [--rows 10000000] [--no-spark]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from carewall.egress import EgressPlan, Source, build_plan, load_mapping, run
from carewall.egress.synthetic import MAPPINGS, write_file
from carewall.policy.decision import CategoryDecision
from carewall.policy.facts import SubjectFacts

CATEGORIES = ["name", "address", "date_of_birth", "attendance", "nationality"]


def _decide(facts: SubjectFacts) -> Mapping[str, CategoryDecision]:
    """A police-like decision: nothing for victims or witnesses without consent, attendance
    for children only (nationality is asked for and never goes)."""
    out = {}
    for c in CATEGORIES:
        ok = (not facts.is_victim_or_witness or facts.consent) and (
            c != "attendance" or facts.is_child
        )
        out[c] = CategoryDecision("review" if ok else "refused", ("local/bench",))
    return out


def _plan() -> EgressPlan:
    return build_plan(load_mapping(MAPPINGS["pupils"]), CATEGORIES, _decide)


def _measure(mode: str, parquet: str, out: str) -> dict[str, Any]:
    """In this (child) process: one timed run."""
    import duckdb
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    plan = _plan()
    rows = int(pq.read_metadata(parquet).num_rows)
    t0 = time.perf_counter()
    written = 0
    if mode == "ceiling":
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        cols = ", ".join('"' + c.replace('"', '""') + '"' for c in plan.output_columns)
        lit = "'" + parquet.replace("'", "''") + "'"
        target = "'" + out.replace("'", "''") + "'"
        got = con.execute(
            f"COPY (SELECT {cols} FROM read_parquet({lit})) TO {target} (FORMAT parquet)"
        ).fetchone()
        written = int(got[0]) if got else 0
        con.close()
    else:
        engine = "spark" if mode == "spark" else "duckdb"
        result = run(plan, Source.parquet(parquet), out, engine=engine)  # type: ignore[arg-type]
        written = result.rows
        if mode == "spark":
            from pyspark.sql import SparkSession

            active = SparkSession.getActiveSession()
            if active is not None:
                active.stop()
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    jvm = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {"rows": rows, "written": written, "seconds": seconds, "rss": rss, "jvm": jvm}


def _child(mode: str, parquet: Path, out: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--measure", mode, str(parquet), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--no-spark", action="store_true", help="skip the PySpark row")
    ap.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(_measure(*args.measure)))
        return

    console = Console(width=150)
    modes = ["ceiling", "carewall"] + ([] if args.no_spark else ["spark"])
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="carewall-egress-bench-") as tmp:
        parquet = Path(tmp) / "pupils.parquet"
        progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                            TimeElapsedColumn(), console=console)  # fmt: skip
        with progress:
            task = progress.add_task(f"building {args.rows:,}-row Parquet extract", total=None)
            write_file("pupils", args.rows, parquet)
            progress.update(task, description="built the extract", completed=1, total=1)
            for mode in modes:
                task = progress.add_task(f"running {mode}", total=None)
                results[mode] = _child(mode, parquet, Path(tmp) / f"{mode}.parquet")
                progress.update(task, description=f"ran {mode}", completed=1, total=1)
        console.print(f"extract: {parquet.stat().st_size / 1e6:,.0f} MB, {args.rows:,} rows")

    table = Table(title="carewall egress vs bare DuckDB COPY (ceiling)", title_justify="left")
    for name in ("run", "rows read", "rows written", "seconds", "rows/s", "vs ceiling",
                 "peak RSS"):  # fmt: skip
        table.add_column(name, justify="left" if name == "run" else "right")
    ceiling = results["ceiling"]["rows"] / results["ceiling"]["seconds"]
    labels = {"ceiling": "DuckDB COPY (ceiling)", "carewall": "carewall on DuckDB",
              "spark": "carewall on PySpark local[2]"}  # fmt: skip
    for mode, r in results.items():
        rate = r["rows"] / r["seconds"]
        rss = f"{r['rss'] / 2**20:,.0f} MiB"
        if mode == "spark":
            rss += f" (+ JVM {r['jvm'] / 2**20:,.0f} MiB)"
        cells = (f"{r['rows']:,}", f"{r['written']:,}", f"{r['seconds']:.2f}", f"{rate:,.0f}")
        table.add_row(labels[mode], *cells, f"{rate / ceiling:.0%}", rss)
    console.print(table)
    console.print("target: carewall on DuckDB >= 80% of the ceiling's rows/s, memory bounded")


if __name__ == "__main__":
    main()
