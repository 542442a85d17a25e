"""In-process submit beside its one-transaction floor, on SQLite and PostgreSQL.

Issue 12: "in-process submit vs its one-transaction floor: ≤ 1.2x on SQLite and PostgreSQL".

- carewall: ``Service.submit(doc)``: parse, decide, the request's rows, two ledger entries,
  two events, a checkpoint when one is due, in one transaction.
- the floor: what any firewall must do for one request and no more: the same document
  parsed (``json.loads``), the same decision (``Engine.decide_facts`` on facts parsed once
  beforehand), then in ONE write transaction the two ledger entries appended through the
  same ledger (``Ledger.append_in``) and ONE INSERT of the request row (id, document,
  decision) into a bare table.

Both run in this process against their own fresh database of the same backend, interleaved
in rounds (medians of per-round means), so the machine's load falls on both alike.

    .venv/bin/python benchmarks/submit.py [-n 400] [--rounds 5] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from support import database, report

REPO = Path(__file__).resolve().parents[1]
TARGET = 1.2  # carewall's time per submit over the floor's (issue 12)
DOC: dict[str, Any] = json.loads((REPO / "examples" / "07-police-theft-suspect.json").read_text())


def _carewall(url: str, key: Path) -> Callable[[], None]:
    from carewall.service import Service

    svc = Service.init(url, None, "bench.example/log", key)
    body = json.dumps(DOC)

    def one() -> None:
        svc.submit(body)

    return one


def _floor(url: str, key: Path) -> Callable[[], None]:
    import sqlalchemy as sa

    from carewall.policy.facts import facts_of
    from carewall.policy.request import parse_request
    from carewall.service import Service
    from carewall.service import logentries as le

    svc = Service.init(url, None, "bench.example/log", key)
    register, engine = svc.register(), svc.engine()
    request = parse_request(DOC, register)
    facts, claimed = facts_of(request)
    stored = request.model_dump(mode="json")
    with svc.store.write() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE bench_floor (id VARCHAR(40) PRIMARY KEY, document TEXT, decision TEXT)"
        )
    table = sa.table(
        "bench_floor",
        sa.column("id", sa.String),
        sa.column("document", sa.Text),
        sa.column("decision", sa.Text),
    )
    body = json.dumps(DOC)
    ledger, store = svc.ledger, svc.store
    functions = {o.id: o.function for o in register.organisations.values()}
    root = "0" * 64  # the subjects' commitments are carewall's own work, not the floor's

    def one() -> None:
        json.loads(body)
        decision = engine.decide_facts(facts, claimed, register).to_json()
        rid = svc.new_id()
        now = le.rfc3339(svc.clock())
        entries = [
            le.request_entry(stored, rid, functions, claimed, root, now),
            le.decision_entry(rid, decision, now),
        ]
        with store.write() as conn:
            ledger.append_in(conn, entries)
            conn.execute(
                table.insert().values(id=rid, document=body, decision=json.dumps(decision))
            )

    return one


def _mean(fn: Callable[[], None], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def run(backend: str, n: int, rounds: int, tmp: Path) -> dict[str, float]:
    with ExitStack() as stack:
        cw = _carewall(
            stack.enter_context(database(backend, tmp, "submit")), tmp / f"{backend}-a.key"
        )
        fl = _floor(stack.enter_context(database(backend, tmp, "floor")), tmp / f"{backend}-b.key")
        cw(), fl()  # warm: caches, prepared statements, the first checkpoint
        times: dict[str, list[float]] = {"carewall": [], "floor": []}
        for _ in range(rounds):
            times["carewall"].append(_mean(cw, n))
            times["floor"].append(_mean(fl, n))
    out = {k: statistics.median(v) for k, v in times.items()}
    out["ratio"] = out["carewall"] / out["floor"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=400, help="submits per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    table = Table(title=f"in-process submit vs its floor (n={args.n} x {args.rounds} rounds)")
    for name in ("backend", "carewall µs", "floor µs", "carewall/floor", "target"):
        table.add_column(name, justify="left" if name == "backend" else "right")
    with tempfile.TemporaryDirectory() as d:
        for backend in args.backends.split(","):
            r = run(backend, args.n, args.rounds, Path(d))
            met = "met" if r["ratio"] <= TARGET else "missed"
            report(
                f"in-process submit, {backend}",
                f"{r['carewall'] * 1e6:.0f} µs",
                f"one-transaction floor {r['floor'] * 1e6:.0f} µs",
                f"{r['ratio']:.2f}x",
                f"≤ {TARGET}x",
                r["ratio"] <= TARGET,
            )
            table.add_row(
                backend,
                f"{r['carewall'] * 1e6:.0f}",
                f"{r['floor'] * 1e6:.0f}",
                f"{r['ratio']:.2f}x",
                f"≤ {TARGET}x: {met}",
            )
    Console().print(table)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
