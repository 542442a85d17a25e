"""The database stopped mid-load: clean 503s, nothing half-recorded, work resumes after.

Runs on a throwaway PostgreSQL cluster of its own (initdb + pg_ctl on a free port in a
temporary directory); the shared server on 5432 is never touched.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from api_support import (
    REQUESTER,
    assert_consistent,
    free_port,
    init_service,
    reviewable,
    uvicorn_server,
)

from carewall.api.auth import create_token
from carewall.service import Service


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        pytest.skip("PostgreSQL server binaries are not installed")
    return str(found[-1])


def _as_postgres(*cmd: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True)


class Cluster:
    def __init__(self, root: Path, port: int) -> None:
        self.data = root / "data"
        self.root = root
        self.port = port
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        _as_postgres(
            _pg_bin("pg_ctl"), "-D", str(self.data), "-o", opts,
            "-l", str(self.root / "pg.log"), "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        _as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@contextmanager
def own_cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="cw-outage-"))
    shutil.chown(root, "postgres", "postgres")
    cluster = Cluster(root, free_port())
    _as_postgres(_pg_bin("initdb"), "-D", str(cluster.data), "-A", "trust", "-U", "postgres")
    cluster.start()
    try:
        yield cluster
    finally:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", _pg_bin("pg_ctl"), "-D", str(cluster.data),
             "-m", "immediate", "stop"],
            capture_output=True,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


class Load(threading.Thread):
    """Submits one request at a time until told to stop; keeps every (status, id)."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"}
        self.results: list[tuple[int, str | None]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        doc = reviewable()
        with httpx.Client(timeout=30) as client:
            for _ in range(5000):  # bounded
                if self.halt.is_set():
                    return
                r = client.post(self.base + "/api/requests", json=doc, headers=self.headers)
                self.results.append((r.status_code, r.json().get("id")))

    def wait_for(self, status: int, count: int) -> None:
        deadline = time.monotonic() + 60
        while sum(1 for s, _ in self.results if s == status) < count:
            assert time.monotonic() < deadline, f"no {count} x {status}: {self.results[-5:]}"
            time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.postgres
def test_database_outage_gives_503_and_recovers(tmp_path: Path) -> None:
    with own_cluster() as pg:
        service = init_service(pg.url, tmp_path)
        token = create_token(service.store, REQUESTER, "requester").secret
        service.close()
        with uvicorn_server(pg.url, tmp_path / "log.key", tmp_path / "server.log") as base:
            load = Load(base, token)
            load.start()
            load.wait_for(201, 15)
            pg.stop()
            load.wait_for(503, 5)
            r = httpx.get(base + "/api/requests", headers=load.headers, timeout=30)
            assert r.status_code == 503 and r.json()["error"] == "unavailable"
            assert "retry-after" in r.headers
            pg.start()
            before = sum(1 for s, _ in load.results if s == 201)
            load.wait_for(201, before + 15)
            load.halt.set()
            load.join(30)

        statuses = {s for s, _ in load.results}
        assert statuses <= {201, 503}, statuses
        acked = {i for s, i in load.results if s == 201}
        failed = sum(1 for s, _ in load.results if s == 503)

        service = Service.open(pg.url, tmp_path / "log.key")
        try:
            stored = {r.id for r in service.list_requests()}
            assert acked <= stored
            # A commit whose answer was lost may exist without a 201, never more than that.
            assert len(stored - acked) <= min(failed, 1)
            with service.store.read() as conn:
                half = conn.execute(
                    sa.text(
                        "SELECT r.id FROM svc_requests r WHERE (SELECT count(*) FROM svc_events e "
                        "WHERE e.request_id = r.id AND e.log_index IS NOT NULL) <> 2"
                    )
                ).all()
            assert half == []  # each request has exactly its request and decision entries
            assert assert_consistent(service) == 2 * len(stored)
        finally:
            service.close()
        assert "Traceback" not in (tmp_path / "server.log").read_text()
