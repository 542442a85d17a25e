"""What the benchmarks share: a scratch database per run, a free port, a real server.

Not a test helper: benchmarks time things, tests never do. A server is given a generous
start-up wait (a loaded machine is slow to import), and a PostgreSQL database is created
for one run and dropped after it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa

__all__ = ["PG_ADMIN", "START_UP", "SUMMARY_ENV", "database", "free_port", "report", "server"]

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# `make bench` names a file here; each benchmark adds its headline figures to it, and
# benchmarks/summary.py prints them as one table.
SUMMARY_ENV = "CAREWALL_BENCH_SUMMARY"
START_UP = 180.0  # seconds a server may take to answer its first request


def report(
    figure: str, carewall: str, ceiling: str, ratio: str, target: str, met: bool | None
) -> None:
    """Add one headline figure to the run's summary (when `make bench` asked for one).

    ``met`` is None for a figure reported without a target.
    """
    path = os.environ.get(SUMMARY_ENV)
    if not path:
        return
    row = {
        "figure": figure,
        "carewall": carewall,
        "ceiling": ceiling,
        "ratio": ratio,
        "target": target,
        "met": met,
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def database(backend: str, tmp: Path, name: str) -> Iterator[str]:
    """A fresh database URL: a file under ``tmp`` for SQLite, a new PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / (name + '.db')}"
        return
    db = f"cw_bench_{name}_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{db}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{db}"
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        engine.dispose()


@contextmanager
def server(cmd: list[str], port: int, log: Path, ready: str = "/openapi.json") -> Iterator[str]:
    """Run ``cmd`` (a server on ``port``) until the block ends; its output goes to ``log``.

    Ready when ``GET ready`` answers 200; a server that exits or is not ready within
    :data:`START_UP` stops the benchmark with the end of its log.
    """
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_UP
        while True:
            try:
                if httpx.get(base + ready, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("server failed: " + log.read_text()[-2000:])
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(120)
