"""Benchmark: witnessing over HTTP (C2SP tlog-witness) with real `carewall witness serve`
processes on loopback.

1. Checkpoints cosigned per second by one witness: a log grows by one entry per checkpoint
   and sends each to the witness with its consistency proof, one after another over one
   keep-alive connection (as a log does: a witness's record of one log moves one step at a
   time). Request bodies are built beforehand, so the figure is the witness's.
2. Publishing latency with 3 witnesses beside none: append one entry and sign a checkpoint
   (none), then also ask the 3 witnesses at once and wait for all 3 cosignatures. The
   difference is what witnessing adds before a checkpoint is cosigned; the write path itself
   never waits for it (the server asks from a background task).

Run: .venv/bin/python benchmarks/witness.py [--n 300] [--rounds 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from support import report

from carewall.ledger import Ledger
from carewall.ledger.note import Signer
from carewall.storage.db import open_store
from carewall.witness.client import ask_witness
from carewall.witness.config import AskedWitness
from carewall.witness.cosignature import Cosigner, parse_witness_vkey
from carewall.witness.protocol import format_add_checkpoint

ENTRY = {"v": 1, "kind": "notice", "request": "r", "time": "2026-01-01T00:00:00Z"}


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def witness(tmp: Path, name: str, log_vkey: str) -> Iterator[AskedWitness]:
    d = tmp / name
    d.mkdir()
    signer = Signer.generate(f"{name}.bench")
    key = d / "w.key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(signer.skey() + "\n")
    (d / "w.toml").write_text(f'[[log]]\nvkey = "{log_vkey}"\n')
    port = _port()
    cmd = [sys.executable, "-c", "from carewall.cli import main; main()", "witness", "serve"]
    cmd += ["--db", f"sqlite:///{d / 'w.db'}", "--key", str(key), "--config", str(d / "w.toml")]
    cmd += ["--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(url + "/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"witness {name} did not start")
            time.sleep(0.2)
        yield AskedWitness(parse_witness_vkey(Cosigner(signer).vkey()), url)
    finally:
        proc.terminate()
        proc.wait(10)


def cosign_rate(tmp: Path, n: int) -> float:
    store = open_store(f"sqlite:///{tmp / 'rate.db'}")
    lg = Ledger.create(store, "rate.bench/log", tmp / "rate.key")
    bodies = []
    old = 0
    for i in range(n):
        lg.append([dict(ENTRY, request=f"r{i}")])
        note = lg.publish()
        size = old + 1
        proof = [] if old == 0 else lg.consistency_proof(old, size)
        bodies.append(format_add_checkpoint(old, proof, note))
        old = size
    with witness(tmp, "rate", lg.verifier_key) as w, httpx.Client() as http:
        start = time.perf_counter()
        for body in bodies:
            r = http.post(w.url + "/add-checkpoint", content=body)
            assert r.status_code == 200, r.text
        elapsed = time.perf_counter() - start
    store.dispose()
    return n / elapsed


def publish_latency(tmp: Path, rounds: int) -> tuple[list[float], list[float]]:
    store = open_store(f"sqlite:///{tmp / 'lat.db'}")
    lg = Ledger.create(store, "lat.bench/log", tmp / "lat.key")
    plain: list[float] = []
    witnessed: list[float] = []
    with ExitStack() as stack:
        ws = [stack.enter_context(witness(tmp, f"w{i}", lg.verifier_key)) for i in range(3)]
        clients = [stack.enter_context(httpx.Client()) for _ in ws]
        pool = stack.enter_context(ThreadPoolExecutor(3))
        for i in range(rounds):
            t0 = time.perf_counter()
            lg.append([dict(ENTRY, request=f"p{i}")])
            lg.publish()
            plain.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            lg.append([dict(ENTRY, request=f"w{i}")])
            lg.publish()
            outcomes = list(
                pool.map(lambda wc: ask_witness(lg, wc[0], wc[1]), zip(ws, clients, strict=False))
            )
            witnessed.append(time.perf_counter() - t0)
            assert all(o is not None and o.cosigned for o in outcomes), outcomes
    store.dispose()
    return plain, witnessed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="checkpoints sent to one witness")
    ap.add_argument("--rounds", type=int, default=50, help="publishes timed each way")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rate = cosign_rate(tmp, args.n)
        plain, witnessed = publish_latency(tmp, args.rounds)
    ms = lambda xs, q: 1000 * statistics.quantiles(xs, n=100)[q - 1]  # noqa: E731
    table = Table(title="carewall witnessing (loopback, SQLite, one run)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("checkpoints cosigned per second, one witness over HTTP", f"{rate:,.0f}")
    table.add_row(
        "publish, no witnesses: p50 / p99 ms", f"{ms(plain, 50):.1f} / {ms(plain, 99):.1f}"
    )
    table.add_row(
        "publish + 3 cosignatures: p50 / p99 ms",
        f"{ms(witnessed, 50):.1f} / {ms(witnessed, 99):.1f}",
    )
    table.add_row(
        "added by 3 witnesses (p50 ms; off the write path)",
        f"{ms(witnessed, 50) - ms(plain, 50):.1f}",
    )
    Console().print(table)
    report(
        "publish with 3 witnesses cosigning (p50)",
        f"{ms(witnessed, 50):.1f} ms",
        f"publish alone {ms(plain, 50):.1f} ms",
        f"+{ms(witnessed, 50) - ms(plain, 50):.1f} ms",
        "—",
        None,
    )


if __name__ == "__main__":
    main()
