"""The auditor beside its ceiling: following a served log from an empty state.

A demo year (``carewall demo --no-serve``, ``--scale``) is served by ``carewall serve`` on
loopback. Each round, interleaved, measures on the same served log:

- ceiling: fetch every entry bundle the signed checkpoint covers and hash it into the
  compact range (hashlib leaf hashes), checking the signed root: the least any auditor
  must do;
- ``audit_log`` in process: the same, plus every entry proven RFC 8785 canonical and
  schema-valid, the replay (decisions made again, releases justified) and the published
  statistics compared, as ``carewall audit`` does: by default in two processes (a forked
  reader fetches, hashes, checks shapes and counts while this process replays:
  ``carewall.audit.pipeline``), and again in one (``parallel=False``) beside it;
- ``carewall audit URL --key K --state NEW`` as a command, from process start to exit.

Medians of ``--reps`` rounds; the ratio is entries/s over the ceiling's (issue 12's target:
in-process audit ≥ 0.6×). Run: ``.venv/bin/python benchmarks/audit.py [--scale 1] [--reps 5]``
"""

from __future__ import annotations

import argparse
import hashlib
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from support import free_port, report, server

from carewall.audit import audit_log
from carewall.audit.fetch import entry_bundles, log_base, open_log_checkpoint, verifier_for
from carewall.ledger.merkle import CompactRange

TARGET = 0.6
CLI = [sys.executable, "-c", "from carewall.cli import main; main()"]
console = Console() if sys.stdout.isatty() else Console(width=150)


def ceiling(url: str, vkey: str, tls: ssl.SSLContext) -> tuple[int, float]:
    """Entries and seconds to fetch and hash every bundle up to the signed checkpoint.

    ``tls`` is made once per run, as the auditor makes its own once per process: a client
    built without one loads the CA bundle again (about 30 ms here, even for http://),
    which would flatter every ratio against this ceiling.
    """
    t0 = time.perf_counter()
    with httpx.Client(base_url=log_base(url) + "/", timeout=60.0, verify=tls) as client:
        _, cp = open_log_checkpoint(client, verifier_for(vkey))
        crange = CompactRange()
        sha = hashlib.sha256
        for _, bundle in entry_bundles(client, 0, cp.size):
            crange.extend([sha(b"\x00" + d).digest() for d in bundle], collect=False)
        if crange.root() != cp.root:
            raise SystemExit("the served entries do not rebuild the signed root")
    return cp.size, time.perf_counter() - t0


def in_process(url: str, vkey: str, parallel: bool | None = None) -> tuple[int, float]:
    t0 = time.perf_counter()
    report, _ = audit_log(url, vkey, None, statistics=True, parallel=parallel)
    seconds = time.perf_counter() - t0
    if report.findings or report.statistics_match is False:
        raise SystemExit(f"the audit found something: {report.findings[:3]}")
    return report.size, seconds


def command(url: str, vkey: str, state: Path) -> float:
    key = state.with_name("audit-state.key")  # a benchmark's own, made on its first run
    t0 = time.perf_counter()
    done = subprocess.run(
        [*CLI, "audit", url, "--key", vkey, "--state", str(state), "--state-key", str(key)],
        capture_output=True,
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit("carewall audit failed: " + done.stdout.decode()[-2000:])
    state.unlink()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="demo year scale (1: ~8,300 entries)")
    ap.add_argument("--reps", type=int, default=5, help="interleaved rounds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="carewall-audit-bench-") as d:
        tmp = Path(d)
        db = tmp / "demo.db"
        console.log(f"building the demo year (scale {args.scale}) …")
        subprocess.run(
            [*CLI, "demo", "--db", str(db), "--scale", str(args.scale), "--no-serve"],
            check=True,
            capture_output=True,
        )
        vkey = Path(str(db) + ".vkey").read_text().strip()
        port = free_port()
        cmd = [*CLI, "serve", "--db", str(db), "--port", str(port)]
        with server(cmd, port, tmp / "serve.log", ready="/log/checkpoint") as url:
            in_process(url, vkey)  # warm the server's caches and this process's imports
            ceil: list[float] = []
            inproc: list[float] = []
            single: list[float] = []
            cli: list[float] = []
            size = 0
            tls = httpx.create_ssl_context()
            for r in range(args.reps):
                size, s = ceiling(url, vkey, tls)
                ceil.append(size / s)
                _, s = in_process(url, vkey)
                inproc.append(size / s)
                _, s = in_process(url, vkey, parallel=False)
                single.append(size / s)
                cli.append(size / command(url, vkey, tmp / f"state-{r}.json"))
                console.log(
                    f"round {r + 1}: ceiling {ceil[-1]:,.0f}/s, audit_log {inproc[-1]:,.0f}/s "
                    f"(one process {single[-1]:,.0f}/s), carewall audit {cli[-1]:,.0f}/s"
                )
    c = statistics.median(ceil)
    table = Table(
        title=f"the auditor beside its ceiling ({size:,} entries of the demo year, loopback, "
        f"medians of {args.reps} interleaved rounds)",
        title_justify="left",
    )
    for col in ("figure", "entries/s", "ceiling", "ratio", "target"):
        table.add_column(col, justify="left" if col in ("figure", "target") else "right")
    table.add_row("ceiling: fetch + hash every bundle, check the root", f"{c:,.0f}", "", "", "")
    for name, values, target in (
        ("audit_log from empty state (replay + statistics)", inproc, True),
        ("the same in one process (parallel=False)", single, False),
        ("`carewall audit` from process start, empty state", cli, False),
    ):
        ratio = statistics.median(values) / c
        verdict = ""
        if target:
            verdict = f"≥ {TARGET}× " + ("[green]met[/]" if ratio >= TARGET else "[red]missed[/]")
            report(
                "auditor from empty state",
                f"{statistics.median(values):,.0f} entries/s",
                f"fetch + hash {c:,.0f}/s",
                f"{ratio:.2f}x",
                f"≥ {TARGET}x",
                ratio >= TARGET,
            )
        table.add_row(
            name, f"{statistics.median(values):,.0f}", f"{c:,.0f}", f"{ratio:.2f}×", verdict
        )
    console.print(table)


if __name__ == "__main__":
    main()
