"""A request about 100,000 people over HTTP, beside a bare endpoint storing the same body.

Issue 12: "a 100,000-subject request over HTTP: accepted (streamed or with a documented,
larger cap), <= 3 s, bounded memory". For SQLite and PostgreSQL, `carewall serve` and the
ceiling (benchmarks/service.py's bare FastAPI endpoint: one INSERT of the body) run at
once; each is sent the same 100,000-subject document in alternating rounds. Reported:
seconds from sending to the reply (medians), and each server's peak resident memory
(VmHWM) after the last round, beside its resident memory before the first.

    .venv/bin/python benchmarks/large_request.py [--subjects 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from service import carewall_server, ceiling_server
from support import report

REPO = Path(__file__).resolve().parents[1]
TARGET = 3.0  # seconds (issue 12)


def _doc(n: int) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (REPO / "examples" / "07-police-theft-suspect.json").read_text(encoding="utf-8")
    )
    doc["subjects"] = [
        {"ref": f"S{i:06d}", "is_child": False, "is_victim_or_witness": False}
        for i in range(1, n + 1)
    ]
    return doc


def _memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _server_pid(port: int) -> int:
    # The process listening on the port (the server itself, not the shell that started it).
    import subprocess

    out = subprocess.run(
        ["lsof", "-ti", f"tcp:{port}", "-sTCP:LISTEN"], capture_output=True, text=True
    )
    return int(out.stdout.split()[0])


def _post(url: str, body: bytes, headers: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = httpx.post(url, content=body, headers=headers, timeout=600)
    seconds = time.perf_counter() - t0
    if r.status_code not in (200, 201):
        raise SystemExit(f"unexpected {r.status_code}: {r.text[:300]}")
    return seconds


def run(backend: str, n: int, rounds: int, tmp: Path) -> dict[str, Any]:
    body = json.dumps(_doc(n)).encode()
    with ExitStack() as stack:
        full, token, port = carewall_server(stack, backend, tmp, "large")
        full_pid = _server_pid(port)
        ceiling, port = ceiling_server(stack, backend, tmp, "large_ceiling")
        ceiling_pid = _server_pid(port)
        before = {p: _memory_kib(p, "VmRSS") for p in (full_pid, ceiling_pid)}
        times: dict[str, list[float]] = {"carewall": [], "ceiling": []}
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for _ in range(rounds):
            times["carewall"].append(
                _post(full + "/api/requests", body, headers | {"Prefer": "return=minimal"})
            )
            times["ceiling"].append(_post(ceiling + "/submit", body, {}))
        peak = {p: _memory_kib(p, "VmHWM") for p in (full_pid, ceiling_pid)}
    return {
        "mb": len(body) / 1e6,
        "carewall": statistics.median(times["carewall"]),
        "ceiling": statistics.median(times["ceiling"]),
        "carewall_mem": (before[full_pid] / 1024, peak[full_pid] / 1024),
        "ceiling_mem": (before[ceiling_pid] / 1024, peak[ceiling_pid] / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    table = Table(title=f"a request about {args.subjects:,} people over HTTP (medians)")
    for col in ("backend", "server", "seconds", "RSS before → peak MiB", "target"):
        table.add_column(col, justify="left" if col in ("backend", "server") else "right")
    with tempfile.TemporaryDirectory() as d:
        for backend in args.backends.split(","):
            r = run(backend, args.subjects, args.rounds, Path(d))
            met = "met" if r["carewall"] <= TARGET else "missed"
            report(
                f"{args.subjects:,}-subject request over HTTP, {backend}",
                f"{r['carewall']:.2f} s, peak {r['carewall_mem'][1]:.0f} MiB",
                f"one INSERT of the body {r['ceiling']:.2f} s",
                f"{r['carewall'] / r['ceiling']:.0f}x",
                "≤ 3 s",
                r["carewall"] <= TARGET,
            )
            for name in ("carewall", "ceiling"):
                lo, hi = r[f"{name}_mem"]
                table.add_row(
                    backend,
                    name + (" (one INSERT of the body)" if name == "ceiling" else ""),
                    f"{r[name]:.2f}",
                    f"{lo:.0f} → {hi:.0f}",
                    f"≤ {TARGET:.0f} s: {met}" if name == "carewall" else "",
                )
    Console().print(table)
    Console().print(f"body: {r['mb']:.1f} MB")


if __name__ == "__main__":
    main()
