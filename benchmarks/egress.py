"""Egress benchmark: ``carewall egress`` on DuckDB beside a bare DuckDB COPY (the ceiling).

One run builds, in a temporary directory, the synthetic pupils extract
(:mod:`carewall.egress.synthetic`) as a 10-million-row Parquet file, then times, each in a
fresh process (so peak RSS is its own), in interleaved rounds (the order alternating from
one round to the next, so a machine growing busier or quieter favours neither):

- carewall: ``run(plan, Source.parquet(…), out)`` on DuckDB: the count pass over the flag
  columns, then the filter (CASE per column, the WHERE on the group), written to Parquet;
- the ceiling: ``COPY (SELECT <the same permitted columns> FROM read_parquet(…)) TO …``
  in a bare DuckDB connection with DuckDB's defaults: no flags read, no filter, no casts;
- Spark, once: the same plan with ``engine="spark"`` (PySpark ``local[2]``), JVM start
  included.

Rows/s are source rows per second (both read every row; carewall writes fewer). Reported:
the median of the rounds, and the median of each round's carewall/ceiling ratio; CPU
seconds (user + system) beside the wall clock, and the load average before and after, since
on a shared machine the wall clock swings with other work. Target: carewall >= 80% of the
ceiling's rows/s, memory bounded (both stream).

    .venv/bin/python benchmarks/egress.py [--rows 10000000] [--rounds 5] [--no-spark]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
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
from support import report

from carewall.egress import EgressPlan, Source, build_plan, load_mapping, run
from carewall.egress.synthetic import MAPPINGS, write_file
from carewall.policy.decision import CategoryDecision
from carewall.policy.facts import SubjectFacts

CATEGORIES = ["name", "address", "date_of_birth", "attendance", "nationality"]
TARGET = 0.8  # of the ceiling's rows/s (issue 10)


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


def _jvm_peak_rss() -> int:
    """The Spark JVM's peak RSS in bytes (Linux ``VmHWM``), 0 when it cannot be read: the
    JVM is not a child this process waits for, so ``RUSAGE_CHILDREN`` never sees it."""
    from pyspark import SparkContext

    proc = getattr(SparkContext._gateway, "proc", None)
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text() if proc else ""
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _measure(mode: str, parquet: str, out: str) -> dict[str, Any]:
    """In this (child) process: one timed run."""
    import duckdb
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    plan = _plan()
    rows = int(pq.read_metadata(parquet).num_rows)
    before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    written = 0
    counted: list[float] = []
    jvm = 0
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

        def progress(phase: str, n: int) -> None:
            if phase == "counted":
                counted.append(time.perf_counter() - t0)

        source = Source.parquet(parquet)
        result = run(plan, source, out, engine=engine, progress=progress)  # type: ignore[arg-type]
        written = result.rows
        if mode == "spark":
            from pyspark.sql import SparkSession

            active = SparkSession.getActiveSession()
            if active is not None:
                jvm = _jvm_peak_rss()
                active.stop()
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    rss = after.ru_maxrss * 1024
    return {"rows": rows, "written": written, "seconds": seconds, "cpu": cpu, "rss": rss,
            "jvm": jvm, "counted": counted[0] if counted else None}  # fmt: skip


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
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians)")
    ap.add_argument("--no-spark", action="store_true", help="skip the PySpark row")
    ap.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(_measure(*args.measure)))
        return

    console = Console(width=170)
    runs: dict[str, list[dict[str, Any]]] = {"ceiling": [], "carewall": []}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="carewall-egress-bench-") as tmp:
        parquet = Path(tmp) / "pupils.parquet"
        progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                            TimeElapsedColumn(), console=console)  # fmt: skip
        with progress:
            task = progress.add_task(f"building {args.rows:,}-row Parquet extract", total=None)
            write_file("pupils", args.rows, parquet)
            progress.update(task, description="built the extract", completed=1, total=1)
            task = progress.add_task("rounds", total=args.rounds)
            for i in range(args.rounds):
                order = ("ceiling", "carewall") if i % 2 == 0 else ("carewall", "ceiling")
                for mode in order:
                    out = Path(tmp) / f"{mode}.parquet"
                    out.unlink(missing_ok=True)
                    runs[mode].append(_child(mode, parquet, out))
                progress.update(task, description=f"round {i + 1} of {args.rounds}", advance=1)
            if not args.no_spark:
                task = progress.add_task("running carewall on PySpark", total=None)
                runs["spark"] = [_child("spark", parquet, Path(tmp) / "spark.parquet")]
                progress.update(task, description="ran PySpark", completed=1, total=1)
        size = parquet.stat().st_size
    load_after = os.getloadavg()
    console.print(f"extract: {size / 1e6:,.0f} MB, {args.rows:,} rows; 1-minute load average "
                  f"{load_before[0]:.1f} before, {load_after[0]:.1f} after, on {os.cpu_count()} "
                  "cores")  # fmt: skip

    def med(mode: str, key: str) -> float:
        return float(statistics.median(r[key] for r in runs[mode]))

    ratios = [c["seconds"] / w["seconds"] for c, w in zip(runs["ceiling"], runs["carewall"],
                                                            strict=True)]  # fmt: skip
    table = Table(title=f"carewall egress vs bare DuckDB COPY (ceiling), medians of "
                        f"{args.rounds} interleaved rounds", title_justify="left")  # fmt: skip
    for name in ("run", "rows read", "rows written", "seconds", "counted after", "CPU s",
                 "rows/s", "vs ceiling", "peak RSS"):  # fmt: skip
        table.add_column(name, justify="left" if name == "run" else "right")
    ceiling = med("ceiling", "rows") / med("ceiling", "seconds")
    labels = {"ceiling": "DuckDB COPY (ceiling)", "carewall": "carewall on DuckDB",
              "spark": "carewall on PySpark local[2]"}  # fmt: skip
    for mode, rs in runs.items():
        seconds = med(mode, "seconds")
        rate = med(mode, "rows") / seconds
        rss = f"{max(r['rss'] for r in rs) / 2**20:,.0f} MiB"
        if mode == "spark":
            jvm = max(r["jvm"] for r in rs)
            rss += f" + JVM {jvm / 2**20:,.0f} MiB" if jvm else " + JVM (not read)"
        counted = [r["counted"] for r in rs if r["counted"] is not None]
        vs = f"{rate / ceiling:.0%}"
        if mode == "carewall":
            vs += f" (per round {statistics.median(ratios):.0%})"
        cells = (f"{rs[0]['rows']:,}", f"{rs[0]['written']:,}",
                 f"{seconds:.2f} ({min(r['seconds'] for r in rs):.2f}-"
                 f"{max(r['seconds'] for r in rs):.2f})",
                 f"{statistics.median(counted):.2f}" if counted else "-",
                 f"{med(mode, 'cpu'):.2f}", f"{rate:,.0f}")  # fmt: skip
        table.add_row(labels[mode], *cells, vs, rss)
        if mode == "ceiling":
            continue
        ratio = rate / ceiling
        report(
            f"egress, {args.rows:,}-row Parquet extract, {labels[mode]}",
            f"{rate / 1e6:.2f}M rows/s ({seconds:.2f} s, peak RSS {rss})",
            f"bare DuckDB COPY {ceiling / 1e6:.2f}M rows/s",
            f"{ratio:.2f}x" + (f" (per round {statistics.median(ratios):.2f}x)"
                               if mode == "carewall" else ""),
            f"≥ {TARGET}x" if mode == "carewall" else "—",
            ratio >= TARGET if mode == "carewall" else None,
        )  # fmt: skip
    console.print(table)
    console.print("per-round carewall/ceiling: " + ", ".join(f"{r:.0%}" for r in ratios))
    console.print(f"target: carewall on DuckDB >= {TARGET:.0%} of the ceiling's rows/s, memory "
                  "bounded; 'counted after': seconds from the start of run() to the end of its "
                  "count pass")  # fmt: skip


if __name__ == "__main__":
    main()
