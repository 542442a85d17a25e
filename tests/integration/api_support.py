"""Shared helpers for the HTTP API tests: instances, tokens, documents, servers, databases."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi.testclient import TestClient
from logaudit import assert_log_audits

from carewall.api.admin import issue_token
from carewall.api.app import create_app
from carewall.ledger import verify_ledger
from carewall.service import Service

REPO = Path(__file__).resolve().parents[2]
HOLDER = "islington-council"
START_UP = 180.0  # seconds a server may take to start on a loaded machine
REQUESTER = "met-police"


def example(name: str = "07-police-theft-suspect.json", **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((REPO / "examples" / name).read_text())
    doc.update(changes)
    return doc


def reviewable(**changes: Any) -> dict[str, Any]:
    """A police request the policy sends for review (name and address releasable)."""
    return example(**changes)


def refused(**changes: Any) -> dict[str, Any]:
    """A police request the policy refuses outright (the pledge: immigration offence)."""
    return example(offence="immigration_act_1971_s24", categories=["name", "address"], **changes)


@dataclass
class Tokens:
    requester: str  # met-police
    other_requester: str  # dwp
    release: str  # dpo-islington at the holder
    appeal: str  # appeals-islington at the holder
    other_release: str  # ig-whittington at another holder
    admin: str

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, name)}"}


def tokens_for(service: Service) -> Tokens:
    return Tokens(
        requester=issue_token(service, REQUESTER, "requester").secret,
        other_requester=issue_token(service, "dwp", "requester").secret,
        release=issue_token(service, HOLDER, "release_reviewer", "dpo-islington").secret,
        appeal=issue_token(service, HOLDER, "appeal_reviewer", "appeals-islington").secret,
        other_release=issue_token(
            service, "whittington-health", "release_reviewer", "ig-whittington"
        ).secret,
        admin=issue_token(service, HOLDER, "admin").secret,
    )


def init_service(db_url: str, tmp: Path) -> Service:
    service = Service.init(db_url, None, "carewall.test/api", tmp / "log.key", operator=HOLDER)
    # Sign on every write so each test sees its entries under the checkpoint at once
    # (a served instance signs at most once a second and its publisher signs the tail).
    service.publish_interval = 0.0
    return service


@contextmanager
def api(db_url: str, tmp: Path) -> Iterator[tuple[TestClient, Service, Tokens]]:
    service = init_service(db_url, tmp)
    try:
        with TestClient(create_app(service)) as client:
            yield client, service, tokens_for(service)
        assert_log_audits(service)  # whatever the test did, its log passes the auditor
    finally:
        service.close()


def access_code(service: Service, request_id: str) -> str:
    """The code from the subject's notice (the outbox channel keeps the message)."""
    for message in service.outbox():
        if request_id in message["body"]:
            found = re.search(r"Your access code:\s+(\S+)", message["body"])
            assert found is not None
            return found.group(1)
    raise AssertionError("no notice for this request")


def assert_consistent(service: Service) -> int:
    """The ledger verifies and every request's recorded log indexes hold its own entries."""
    report = verify_ledger(service.store)
    assert report.ok, report.first
    checked = 0
    with service.store.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT request_id, kind, log_index FROM svc_events WHERE log_index IS NOT NULL"
            )
        ).all()
    for request_id, _kind, index in rows:
        (raw,) = service.ledger.entries(index, index + 1)
        assert json.loads(raw)["request"] == request_id
        checked += 1
    return checked


# ----- PostgreSQL ---------------------------------------------------------------------


# ----- real servers ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_up(url: str, proc: subprocess.Popen[Any], output: Callable[[], str]) -> None:
    """Poll ``url`` until it answers 200; fail with ``output()`` if ``proc`` exits first or
    START_UP seconds pass (generous: a loaded machine is slow to import and start)."""
    deadline = time.monotonic() + START_UP
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"server exited before {url} answered: {output()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"server did not start ({url}): {output()}")
        time.sleep(0.2)


@contextmanager
def uvicorn_server(
    db_url: str, key: Path, log: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``carewall serve`` in a subprocess on a free loopback port; yields its base URL.

    The start-up wait is generous (START_UP seconds): a loaded two-core machine may take
    long to import and open the instance, and a busy machine must not fail a test.
    """
    port = free_port()
    cmd = [sys.executable, "-c", "from carewall.cli import main; main()", "serve"]
    cmd += ["--db", db_url, "--key", str(key), "--host", "127.0.0.1", "--port", str(port)]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*cmd, *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base + "/log/checkpoint", proc, lambda: log.read_text()[-2000:])
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ----- load from other processes ----------------------------------------------------------


def submit_many(bases: list[str], token: str, count: int, threads: int = 4) -> list[list[Any]]:
    """Submit ``count`` requests over HTTP from this process; [status, id or None] each.

    Run in a child process (module-level so it pickles); spreads over ``bases`` round-robin.
    """
    from concurrent.futures import ThreadPoolExecutor

    headers = {"Authorization": f"Bearer {token}"}
    doc = reviewable()

    def one(i: int) -> list[Any]:
        with httpx.Client(timeout=60) as client:
            r = client.post(bases[i % len(bases)] + "/api/requests", json=doc, headers=headers)
        return [r.status_code, r.json().get("id") if r.status_code == 201 else None]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))
