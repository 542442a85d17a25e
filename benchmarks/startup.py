"""Benchmark: how long the ``carewall`` command takes to start, beside ``python -c pass``.

Each command is run as a fresh process, interleaved with the others, several times; the
table gives medians and the ratio to a bare interpreter start (the ceiling). "every module"
imports all command modules up front, as the CLI did before commands were loaded lazily;
"import carewall.policy" is what ``decide`` cannot avoid (the engine and Cedar);
"import carewall.policy.request" is the pydantic request models, which ``decide`` no
longer imports. Target: ``carewall decide`` (one subject) <= 5x ``python -c pass``.

Every process runs with bytecode caching on, as an installed package does (pip compiles
it at install), into a scratch ``PYTHONPYCACHEPREFIX``, after one untimed round that fills
it: with ``PYTHONDONTWRITEBYTECODE`` set (as in this repo's dev shell) every carewall
module would be compiled from source on every start, ceiling excepted. ``--no-bytecode``
measures that case instead.

Run: .venv/bin/python benchmarks/startup.py [--repeat 7] [--no-bytecode]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from support import report

REQUEST = {
    "reference": "MPS-2026-000123",
    "requester": "met-police",
    "holder": "whittington-health",
    "purpose": "prevention_detection_of_crime",
    "legal_basis": "dpa2018_sch2_p1_para2_crime",
    "offence": "theft_act_1968_s1",
    "subjects": [{"ref": "9434765919", "is_child": False, "is_victim_or_witness": False}],
    "categories": ["name", "address", "health_record", "nationality"],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-bytecode", action="store_true", help="compile from source on every start")
    args = ap.parse_args()
    py = sys.executable
    carewall = str(Path(py).with_name("carewall"))
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "request.json"
        req.write_text(json.dumps(REQUEST))
        env = dict(os.environ)
        if args.no_bytecode:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        cases = {
            "python -c pass (ceiling)": [py, "-c", "pass"],
            "carewall --version": [carewall, "--version"],
            "carewall --help": [carewall, "--help"],
            "carewall decide (1 subject)": [carewall, "decide", str(req)],
            "import carewall.policy": [py, "-c", "import carewall.policy"],
            "import carewall.policy.request": [py, "-c", "import carewall.policy.request"],
            "every module (the old start-up)": [
                py,
                "-c",
                "from carewall.cli import load_all; load_all()",
            ],
        }
        times: dict[str, list[float]] = {k: [] for k in cases}
        for round_ in range(args.repeat + 1):
            for name, cmd in cases.items():
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True, env=env)
                if round_:  # round 0 fills the bytecode cache
                    times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["python -c pass (ceiling)"])
    how = "compiled from source each time" if args.no_bytecode else "bytecode cached"
    table = Table(title=f"carewall start-up (median of {args.repeat}, interleaved, {how})")
    for col in ("command", "wall", "vs python -c pass", "target"):
        table.add_column(col, justify="right")
    for name in cases:
        m = statistics.median(times[name])
        target = "≤ 5x" if name.startswith("carewall decide") else ""
        table.add_row(name, f"{m * 1e3:.0f} ms", f"{m / base:.1f}x", target)
        if target:
            report(
                f"`carewall decide` start-up ({how})",
                f"{m * 1e3:.0f} ms",
                f"python -c pass {base * 1e3:.0f} ms",
                f"{m / base:.1f}x",
                target,
                m / base <= 5,
            )
    Console().print(table)


if __name__ == "__main__":
    main()
