"""Submissions per second and p50/p99 latency over real HTTP, against a bare-INSERT ceiling.

For SQLite and PostgreSQL, one run each of:
- carewall: ``POST /api/requests`` through ``carewall serve`` (uvicorn, loopback): token
  check, parse, full policy decision, request state and two ledger entries in one
  transaction, checkpoint published.
- ceiling: a bare FastAPI endpoint under the same uvicorn that does one INSERT of the body
  per request on the same database (same engine settings), the most any API could do.

Both servers run at once and are loaded in alternating rounds (``--rounds``; the medians
are reported), so a busy moment on a shared machine falls on both alike.

Target (issue 12): carewall at ≥ 75% of the ceiling's requests per second on both.
Usage: ``python benchmarks/service.py [-n N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import Request
from rich.console import Console
from rich.table import Table
from support import database, free_port, report, server

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.75  # carewall's share of the ceiling's throughput (issue 12; issue 4 asked 50%)
DOC: dict[str, Any] = json.loads((REPO / "examples" / "07-police-theft-suspect.json").read_text())


def ceiling_app(db_url: str) -> Any:
    """The bare endpoint: one INSERT per request, nothing else."""
    from fastapi import FastAPI
    from fastapi.concurrency import run_in_threadpool

    from carewall.storage.db import open_store

    store = open_store(db_url)
    table = sa.table("bench_ceiling", sa.column("id", sa.String), sa.column("body", sa.Text))
    with store.write() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE IF NOT EXISTS bench_ceiling (id VARCHAR(40) PRIMARY KEY, body TEXT)"
        )
    app = FastAPI()

    @app.post("/submit", status_code=201)
    async def submit(request: Request) -> dict[str, str]:
        body = (await request.body()).decode()
        rid = uuid.uuid4().hex

        def insert() -> None:
            with store.write() as conn:
                conn.execute(table.insert().values(id=rid, body=body))

        await run_in_threadpool(insert)
        return {"id": rid}

    return app


def _load(url: str, headers: dict[str, str], n: int, concurrency: int) -> dict[str, float]:
    def worker(count: int) -> list[float]:
        times = []
        with httpx.Client(timeout=60, headers=headers) as client:
            for _ in range(count):
                t0 = time.perf_counter()
                r = client.post(url, json=DOC)
                times.append(time.perf_counter() - t0)
                if r.status_code != 201:
                    raise SystemExit(f"unexpected {r.status_code}: {r.text[:200]}")
        return times

    worker(max(10, n // 20))  # warm up connections, caches and the JIT-free paths
    per = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        lat = [x for part in pool.map(worker, per) for x in part]
    elapsed = time.perf_counter() - t0
    lat.sort()
    return {
        "rps": len(lat) / elapsed,
        "p50": statistics.median(lat) * 1000,
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
    }


def carewall_server(stack: ExitStack, backend: str, tmp: Path, name: str) -> tuple[str, str, int]:
    """`carewall serve` on a fresh database for as long as ``stack``: base URL, a
    requester's token (met-police) and the port."""
    from carewall.api.auth import create_token
    from carewall.service import Service

    url = stack.enter_context(database(backend, tmp, name))
    key = tmp / f"{backend}-{name}.key"
    svc = Service.init(url, None, "bench.example/log", key)
    token = create_token(svc.store, "met-police", "requester").secret
    svc.close()
    port = free_port()
    cmd = [sys.executable, "-c", "from carewall.cli import main; main()", "serve", "--db", url]
    cmd += ["--key", str(key), "--port", str(port)]
    return stack.enter_context(server(cmd, port, tmp / f"{backend}-{name}.log")), token, port


def ceiling_server(stack: ExitStack, backend: str, tmp: Path, name: str) -> tuple[str, int]:
    """The bare endpoint (:func:`ceiling_app`) on a fresh database: base URL and port."""
    url = stack.enter_context(database(backend, tmp, name))
    port = free_port()
    code = (
        "import sys, uvicorn; sys.path.insert(0, sys.argv[1]); import service; "
        "uvicorn.run(service.ceiling_app(sys.argv[2]), host='127.0.0.1', "
        "port=int(sys.argv[3]), log_level='warning')"
    )
    cmd = [sys.executable, "-c", code, str(Path(__file__).parent), url, str(port)]
    return stack.enter_context(server(cmd, port, tmp / f"{backend}-{name}.log")), port


def run(
    backend: str, n: int, concurrency: int, rounds: int, tmp: Path
) -> tuple[dict[str, float], dict[str, float], float]:
    """Medians of the rounds for carewall and the ceiling, and the median of their ratios."""
    with ExitStack() as stack:
        full_base, token, _ = carewall_server(stack, backend, tmp, "full")
        ceiling_base, _ = ceiling_server(stack, backend, tmp, "ceiling")
        fulls, ceilings = [], []
        for _ in range(rounds):
            auth = {"Authorization": f"Bearer {token}"}
            fulls.append(_load(full_base + "/api/requests", auth, n, concurrency))
            ceilings.append(_load(ceiling_base + "/submit", {}, n, concurrency))
    ratio = statistics.median(f["rps"] / c["rps"] for f, c in zip(fulls, ceilings, strict=True))
    return _median(fulls), _median(ceilings), ratio


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=int(os.environ.get("BENCH_N", "600")))
    parser.add_argument("-c", "--concurrency", type=int, default=8)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for backend in args.backends.split(","):
            full, ceiling, ratio = run(backend, args.n, args.concurrency, args.rounds, Path(d))
            rows.append((backend, full, ceiling, ratio))
    table = Table(
        title=f"submissions over HTTP (n={args.n} x {args.rounds} rounds, "
        f"concurrency={args.concurrency}, loopback, medians)"
    )
    for name in ("backend", "endpoint", "req/s", "p50 ms", "p99 ms", "vs ceiling"):
        table.add_column(name, justify="left" if name in ("backend", "endpoint") else "right")
    for backend, full, ceiling, ratio in rows:
        verdict = f"{ratio:.1%} " + ("(≥ 75%: met)" if ratio >= TARGET else "(< 75%: missed)")
        report(
            f"HTTP submit, {backend}, {args.concurrency} clients",
            f"{full['rps']:.0f} req/s",
            f"bare INSERT endpoint {ceiling['rps']:.0f} req/s",
            f"{ratio:.0%}",
            "≥ 75%",
            ratio >= TARGET,
        )
        for name, r, extra in (("carewall", full, verdict), ("ceiling", ceiling, "")):
            table.add_row(
                backend, name, f"{r['rps']:.1f}", f"{r['p50']:.1f}", f"{r['p99']:.1f}", extra
            )
    Console().print(table)


if __name__ == "__main__":
    main()
