"""The demo year's build rate, as `carewall demo` builds it, beside the same build durable.

Issue 12: "demo build: 58 req/s -> >= 400 req/s". One run builds the synthetic year
(:func:`carewall.cli.demo_year.fill_year`: every request submitted, reviewed, appealed,
withdrawn, noticed and delivered in process) on a fresh SQLite file twice, alternating:

- as the demo builds it: ``synchronous=NORMAL`` (commits do not wait for the disk);
- durable: ``synchronous=FULL``, as every live instance (what the demo did before).

Rates are requests of the year per second of build (module imports excluded).

    .venv/bin/python benchmarks/demo.py [--scale 1.0] [--rounds 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from support import report

from carewall.cli.demo_year import fill_year
from carewall.service import Service

TARGET = 400.0  # requests per second (issue 12)


def build(tmp: Path, name: str, scale: float, durable: bool) -> tuple[int, float]:
    url = f"sqlite:///{tmp / (name + '.db')}"
    svc = Service.init(url, None, "demo.bench/log", tmp / (name + ".key"), durable=durable)
    try:
        t0 = time.perf_counter()
        stats = fill_year(svc, 2026, scale)
        return stats.submitted, time.perf_counter() - t0
    finally:
        svc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"demo (synchronous=NORMAL)": [], "durable (FULL)": []}
    n = 0
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.rounds):
            for i, (label, durable) in enumerate(
                (("demo (synchronous=NORMAL)", False), ("durable (FULL)", True))
            ):
                n, secs = build(Path(d), f"r{r}-{i}", args.scale, durable)
                rates[label].append(n / secs)
    table = Table(title=f"demo year build ({n} requests, {args.rounds} round(s), medians)")
    for col in ("build", "requests/s", "target"):
        table.add_column(col, justify="left" if col == "build" else "right")
    for label, got in rates.items():
        rate = statistics.median(got)
        verdict = "met" if rate >= TARGET else "missed"
        table.add_row(label, f"{rate:.0f}", f"≥ {TARGET:.0f}: {verdict}")
        report(
            f"demo year build, {label}",
            f"{rate:.0f} req/s",
            "—",
            "—",
            "≥ 400 req/s",
            rate >= TARGET,
        )
    Console().print(table)


if __name__ == "__main__":
    main()
