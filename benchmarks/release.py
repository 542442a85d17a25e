"""Releasing many subjects over HTTP: how soon the call returns, and when every notice is out.

For SQLite and PostgreSQL and each size (default 1,000, 10,000 and 100,000 subjects):

- carewall: a request about N people is submitted in-process (a body of 100,000 subjects is
  over the API's 1 MiB limit), then ``POST /api/requests/{id}/review {"release": true}``
  with ``Prefer: return=minimal`` goes to ``carewall serve`` (uvicorn, loopback); then the
  full record is read with ``GET /api/requests/{id}/record`` (timed apart: that reply
  grows with the release). Timed: the HTTP response, and the time
  from the call until every notice is delivered (the database is polled every 20 ms, so
  that figure is good to about 20 ms). A release of more than 100 people is recorded at
  once; its notices (a row and a log entry each) are written and delivered by the server's
  background job; up to 100 are written and delivered before the reply.
- ceiling: N bare INSERTs of notice-shaped rows in one transaction on the same database
  (same engine settings): the least any design could spend recording N notices.

Usage: ``python benchmarks/release.py [--sizes 1000,10000,100000] [--backends sqlite,postgres]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table
from support import database, free_port, report, server

REPO = Path(__file__).resolve().parents[1]
DOC: dict[str, Any] = json.loads((REPO / "examples" / "07-police-theft-suspect.json").read_text())
POLL = 0.02


def _doc(n: int) -> dict[str, Any]:
    doc = dict(DOC, categories=["name", "address"])
    doc["subjects"] = [
        {"ref": f"S{i:07d}", "is_child": False, "is_victim_or_witness": False}
        for i in range(1, n + 1)
    ]
    return doc


def _undelivered(conn: sa.Connection, request_id: str, n: int) -> int:
    """Subjects not yet told: notices still to be written by the job, or to be delivered."""
    q = sa.text(
        "SELECT count(*) FROM svc_notices WHERE request_id = :rid AND delivered_at IS NOT NULL"
    )
    return n - int(conn.execute(q, {"rid": request_id}).scalar_one())


def release(backend: str, n: int, tmp: Path) -> dict[str, Any]:
    """One release of ``n`` subjects through a real server; timings in seconds."""
    from carewall.api.admin import issue_token
    from carewall.service import Service

    with database(backend, tmp, f"release{n}") as url:
        key = tmp / f"{backend}-{n}.key"
        svc = Service.init(url, None, "bench.example/log", key, operator="islington-council")
        token = issue_token(svc, "islington-council", "release_reviewer", "dpo-islington").secret
        request_id = svc.submit(_doc(n)).id
        svc.close()
        poll = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        port = free_port()
        cmd = [sys.executable, "-c", "from carewall.cli import main; main()", "serve"]
        cmd += ["--db", url, "--key", str(key), "--port", str(port)]
        auth = {"Authorization": f"Bearer {token}"}
        try:
            with server(cmd, port, tmp / f"{backend}-{n}.log", ready="/log/checkpoint") as base:
                t0 = time.perf_counter()
                r = httpx.post(
                    f"{base}/api/requests/{request_id}/review",
                    json={"release": True},
                    headers={**auth, "Prefer": "return=minimal"},
                    timeout=3600,
                )
                response = time.perf_counter() - t0
                if r.status_code != 200:
                    raise SystemExit(f"review failed: {r.status_code} {r.text[:300]}")
                reply = r.json()
                with poll.connect() as conn:
                    while _undelivered(conn, request_id, n):
                        time.sleep(POLL)
                        conn.rollback()
                delivered = time.perf_counter() - t0
                t1 = time.perf_counter()
                full = httpx.get(
                    f"{base}/api/requests/{request_id}/record", headers=auth, timeout=3600
                )
                record = time.perf_counter() - t1
                full.raise_for_status()
        finally:
            poll.dispose()
    job = reply.get("job") or {}
    return {
        "response": response,
        "delivered": delivered,
        "reply_kb": len(r.content) / 1e3,
        "record": record,
        "record_mb": len(full.content) / 1e6,
        "job": f"{job.get('state', '—')} {job.get('done', 0)}/{job.get('total', 0)}",
    }


def bare_inserts(backend: str, n: int, tmp: Path) -> float:
    """``n`` notice-shaped rows INSERTed in one transaction; seconds including the commit."""
    from carewall.storage.db import open_store

    with database(backend, tmp, f"ceiling{n}") as url:
        store = open_store(url)
        try:
            with store.write() as conn:
                conn.exec_driver_sql(
                    "CREATE TABLE bench_notices (id INTEGER PRIMARY KEY, request_id VARCHAR(40) "
                    "NOT NULL, position INTEGER NOT NULL, status VARCHAR(32) NOT NULL, "
                    "release_index BIGINT NOT NULL, log_index BIGINT NOT NULL, "
                    "created_at VARCHAR(20) NOT NULL)"
                )
            table = sa.table(
                "bench_notices",
                *(
                    sa.column(c)
                    for c in (
                        "id",
                        "request_id",
                        "position",
                        "status",
                        "release_index",
                        "log_index",
                        "created_at",
                    )
                ),
            )
            rows = [
                {
                    "id": i + 1,
                    "request_id": "r0123456789abcdef0123",
                    "position": i,
                    "status": "sent",
                    "release_index": 7,
                    "log_index": 8 + i,
                    "created_at": "2026-11-21T10:00:00Z",
                }
                for i in range(n)
            ]
            t0 = time.perf_counter()
            with store.write() as conn:
                conn.execute(table.insert(), rows)
            return time.perf_counter() - t0
        finally:
            store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    console = Console(width=150)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for backend in args.backends.split(","):
            for n in sizes:
                got = release(backend, n, tmp)
                ceiling = bare_inserts(backend, n, tmp)
                rows.append((backend, n, got, ceiling))
                console.print(
                    f"{backend} {n:>7,}: response {got['response']:.3f} s, all delivered "
                    f"{got['delivered']:.2f} s, {n:,} bare INSERTs {ceiling:.3f} s"
                )
    table = Table(title="releasing N subjects over HTTP, beside N bare INSERTs (loopback)")
    for name in (
        "backend",
        "subjects",
        "HTTP response",
        "reply",
        "job in reply",
        "all notices delivered",
        "notices/s",
        "N bare INSERTs",
        "delivered ÷ INSERTs",
        "full record GET",
    ):
        table.add_column(name, justify="left" if name in ("backend", "job in reply") else "right")
    for backend, n, got, ceiling in rows:
        report(
            f"release of {n:,} people over HTTP, {backend}: reply",
            f"{got['response']:.2f} s",
            f"{n:,} bare INSERTs {ceiling:.2f} s",
            f"{got['response'] / ceiling:.1f}x",
            "—",
            None,
        )
        table.add_row(
            backend,
            f"{n:,}",
            f"{got['response']:.3f} s",
            f"{got['reply_kb']:.1f} kB",
            got["job"],
            f"{got['delivered']:.2f} s",
            f"{n / got['delivered']:,.0f}",
            f"{ceiling:.3f} s",
            f"{got['delivered'] / ceiling:,.1f}×",
            f"{got['record']:.2f} s ({got['record_mb']:.1f} MB)",
        )
    console.print(table)


if __name__ == "__main__":
    main()
