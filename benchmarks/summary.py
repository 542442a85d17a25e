"""One table of every benchmark's headline figures, as `make bench` collected them.

Each benchmark adds its figures with :func:`support.report` to the file named by
``CAREWALL_BENCH_SUMMARY``; this prints them in the order they ran, each beside its ceiling
and its target (issue 12: "keep `make bench` printing one table"). Every benchmark's own
detailed table is kept in ``build/bench/<name>.txt``.

    .venv/bin/python benchmarks/summary.py build/bench/summary.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: summary.py SUMMARY.jsonl")
    path = Path(sys.argv[1])
    if not path.exists():
        raise SystemExit(f"{path}: no figures were reported (run `make bench`)")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    table = Table(title="carewall benchmarks: each figure beside its ceiling, in one run")
    for col in ("figure", "carewall", "ceiling", "ratio", "target", "met?"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    for r in rows:
        met = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "—"}[r["met"]]
        table.add_row(r["figure"], r["carewall"], r["ceiling"], r["ratio"], r["target"], met)
    Console(width=200).print(table)
    missed = sum(1 for r in rows if r["met"] is False)
    print(f"{len(rows)} figures, {missed} short of their target; details in {path.parent}/")


if __name__ == "__main__":
    main()
