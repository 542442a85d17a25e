"""Helpers for the witness tests: carewall instances and witnesses on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from api_support import free_port, uvicorn_server, wait_up

from carewall.ledger import Ledger
from carewall.ledger.note import Signer
from carewall.service import Service
from carewall.storage.db import open_store
from carewall.witness.cosignature import Cosigner

DEADLINE = 120.0  # seconds to wait for the background publisher (a loaded machine is slow)


@dataclass
class Instance:
    """One carewall instance: its database, log key and witness key (not yet served)."""

    name: str
    db: str
    dir: Path
    log_vkey: str
    witness_key: Path
    witness_vkey: str


def make_instance(tmp: Path, name: str, db: str | None = None) -> Instance:
    d = tmp / name
    d.mkdir()
    url = db or f"sqlite:///{d / 'cw.db'}"
    service = Service.init(
        url, None, f"{name}.test/log", d / "log.key", operator="islington-council"
    )
    vkey = service.ledger.verifier_key
    service.close()
    wkey = d / "witness.key"
    signer = Signer.generate(f"witness.{name}.test")
    fd = os.open(wkey, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(signer.skey() + "\n")
    return Instance(name, url, d, vkey, wkey, Cosigner(signer).vkey())


def write_config(path: Path, witnesses: list[tuple[str, str]] = (), logs: list[str] = ()) -> Path:  # type: ignore[assignment]
    lines = [f'[[witness]]\nvkey = "{v}"\nurl = "{u}"\n' for v, u in witnesses]
    lines += [f'[[log]]\nvkey = "{v}"\n' for v in logs]
    path.write_text("\n".join(lines))
    return path


@contextmanager
def witness_server(
    inst: Instance, logs: list[str], port: int | None = None, *, script: str | None = None
) -> Iterator[str]:
    """``carewall witness serve`` for ``logs`` (verifier keys); yields its URL prefix.

    ``script`` replaces the command with ``python -c script`` (given the same arguments),
    for the crash tests.
    """
    port = port or free_port()
    cfg = write_config(inst.dir / f"witness-{port}.toml", logs=logs)
    log = inst.dir / f"witness-{port}.log"
    args = ["witness", "serve", "--db", inst.db, "--key", str(inst.witness_key)]
    args += ["--config", str(cfg), "--port", str(port), "--prefix", "/witness"]
    code = script or "from carewall.cli import main; main()"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    url = f"http://127.0.0.1:{port}/witness"
    try:
        if script is None:
            wait_up(url + "/", proc, lambda: log.read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def log_server(inst: Instance, witnesses: list[tuple[str, str]]) -> Iterator[str]:
    """``carewall serve`` for the instance, asking ``witnesses`` (vkey, url)."""
    cfg = write_config(inst.dir / "asks.toml", witnesses=witnesses)
    with uvicorn_server(
        inst.db,
        inst.dir / "log.key",
        inst.dir / "serve.log",
        env={"CAREWALL_WITNESSES": str(cfg)},
    ) as base:
        yield base


def poll(what: str, check: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def witnesses_doc(base: str) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(base + "/log/witnesses", timeout=30).json()
    return doc


def all_caught_up(base: str) -> bool:
    doc = witnesses_doc(base)
    return bool(doc["witnesses"]) and not any(w["behind"] for w in doc["witnesses"])


def grow(inst: Instance, n: int, tag: str = "x") -> None:
    """Append ``n`` entries from outside the server (its publisher signs them)."""
    store = open_store(inst.db)
    try:
        Ledger.open(store, inst.dir / "log.key").append(
            [
                {"v": 1, "kind": "notice", "request": f"{tag}{i}", "time": "2026-01-01T00:00:00Z"}
                for i in range(n)
            ]
        )
    finally:
        store.dispose()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from carewall.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
