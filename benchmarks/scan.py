"""Scan benchmark: ``carewall scan`` beside a bare DuckDB count over the same columns.

One run builds, in a temporary directory, the synthetic school census
(:mod:`carewall.clean.synthetic`) as a 10-million-row Parquet file and a 1-million-row
PostgreSQL table, then times, each in a fresh process (so peak RSS is its own):

- the scanner: ``scan(open_source(SOURCE))``, every table, every rule;
- the ceiling: ``SELECT count(*), count(col), …`` in DuckDB over the
  same candidate columns (those whose names match a rule). For Parquet DuckDB reads the
  file; for PostgreSQL it reads the same Arrow stream the scanner does (DuckDB's
  postgres_scanner is a download this machine cannot make), so that ceiling includes
  the transport both pay.

Target: scanner rows/s >= 50% of the ceiling's, with memory bounded (streamed, never the
whole table). Needs the PostgreSQL server at $CAREWALL_TEST_PG (default 127.0.0.1:5432);
without it, only the Parquet row is measured.

    .venv/bin/python benchmarks/scan.py [--parquet-rows 10000000] [--pg-rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from support import report

from carewall.clean import open_source, scan
from carewall.clean.rules import default_rules
from carewall.clean.sources import duck
from carewall.clean.synthetic import census_sql, write_postgres

PG_SERVER = os.environ.get("CAREWALL_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def _measure(mode: str, spec: str) -> dict[str, Any]:
    """In this (child) process: time the scanner or the ceiling over ``spec``."""
    src = open_source(spec)
    rules = default_rules()
    t0 = time.perf_counter()
    if mode == "scanner":
        report = scan(src, rules)
        rows = report.rows
        flagged = len(report.flagged)
    else:
        rows, flagged = 0, 0
        con = duck()
        for table in src.tables():
            cols = [c for c in table.columns if rules.candidates(c)]
            rel = src.relation(con, table, cols, None)
            # count(cI), not count(*) FILTER (WHERE cI IS NOT NULL): the same numbers, and
            # DuckDB's fastest form of them (116 against 176 ms on 10M Parquet rows), so the
            # ceiling does no more than it names.
            counts = ["count(*)", *(f"count(c{i})" for i in range(len(cols)))]
            got = con.execute(f"SELECT {', '.join(counts)} FROM {rel}").fetchall()[0]
            rows += int(got[0])
        con.close()
    seconds = time.perf_counter() - t0
    src.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rows": rows, "seconds": seconds, "rss": rss, "flagged": flagged}


def _child(mode: str, spec: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", mode, spec],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _pg_database(rows: int) -> str | None:
    import psycopg

    try:
        admin = psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError:
        return None
    name = f"carewall_bench_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = f"{PG_SERVER}/{name}"
    write_postgres(url, rows, admissions=1)
    return url


def _drop(url: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parquet-rows", type=int, default=10_000_000)
    ap.add_argument("--pg-rows", type=int, default=1_000_000)
    ap.add_argument("--measure", nargs=2, metavar=("MODE", "SOURCE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(_measure(*args.measure)))
        return

    console = Console(width=150)
    with tempfile.TemporaryDirectory(prefix="carewall-scan-bench-") as tmp:
        parquet = Path(tmp) / "census.parquet"
        t0 = time.perf_counter()
        con = duck()
        con.execute(f"COPY ({census_sql(args.parquet_rows)}) TO '{parquet}' (FORMAT parquet)")
        con.close()
        console.print(
            f"built {args.parquet_rows:,}-row Parquet ({parquet.stat().st_size / 1e6:.0f} MB) "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        sources = [("Parquet", str(parquet))]
        t0 = time.perf_counter()
        pg = _pg_database(args.pg_rows)
        if pg is None:
            console.print(f"PostgreSQL at {PG_SERVER} is unreachable: skipping its row")
        else:
            console.print(f"built {args.pg_rows:,}-row PostgreSQL table in "
                          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
            sources.append(("PostgreSQL", pg))
        table = Table(title="carewall scan vs bare DuckDB count (ceiling)", title_justify="left")
        for name in ("source", "rows", "scanner rows/s", "ceiling rows/s", "ratio",
                     "scanner peak RSS", "ceiling peak RSS", "flagged"):  # fmt: skip
            table.add_column(name, justify="left" if name == "source" else "right")
        try:
            for label, spec in sources:
                ceiling = _child("ceiling", spec)
                scanner = _child("scanner", spec)
                s_rate = scanner["rows"] / scanner["seconds"]
                c_rate = ceiling["rows"] / ceiling["seconds"]
                report(
                    f"carewall scan, {label}",
                    f"{s_rate:,.0f} rows/s",
                    f"bare DuckDB count {c_rate:,.0f} rows/s",
                    f"{s_rate / c_rate:.0%}",
                    "≥ 50%",
                    s_rate / c_rate >= 0.5,
                )
                table.add_row(
                    label,
                    f"{scanner['rows']:,}",
                    f"{s_rate:,.0f}",
                    f"{c_rate:,.0f}",
                    f"{s_rate / c_rate:.0%}",
                    f"{scanner['rss'] / 2**20:,.0f} MiB",
                    f"{ceiling['rss'] / 2**20:,.0f} MiB",
                    str(scanner["flagged"]),
                )
        finally:
            if pg is not None:
                _drop(pg)
        console.print(table)
        console.print("target: ratio >= 50%, memory bounded (both stream the table)")


if __name__ == "__main__":
    main()
