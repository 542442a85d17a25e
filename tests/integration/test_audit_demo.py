"""Every log carewall writes passes its own audit: the demo year, served by ``carewall serve``.

The demo exercises the whole service (register changes, submissions, reviews with corrected
facts, releases, appeals, withdrawals, deferrals renewed and lifted), so an audit failure
here is the service writing something the contract does not allow, or the auditor being
wrong about what it allows.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

CAREWALL = [str(Path(sys.executable).with_name("carewall"))]
START_UP = 180.0  # seconds: a shared machine may be slow to start uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("demo")
    db = tmp / "demo.db"
    subprocess.run(
        [*CAREWALL, "demo", "--db", str(db), "--scale", "0.05", "--no-serve"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    port = free_port()
    server = subprocess.Popen(
        [*CAREWALL, "serve", "--db", str(db), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_UP
        while True:
            try:
                key = httpx.get(f"{url}/log/key", timeout=5).raise_for_status().text.strip()
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    err = server.stderr.read().decode() if server.stderr else ""
                    pytest.fail(f"carewall serve did not start: {err[-2000:]}")
                time.sleep(0.5)
        yield url, key
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(30)


def carewall_audit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CAREWALL, "audit", *args], capture_output=True, text=True, timeout=600)


def test_the_demo_log_passes_its_audit(served: tuple[str, str], tmp_path: Path) -> None:
    url, key = served
    state = tmp_path / "state.json"
    result = carewall_audit(url, "--key", key, "--state", str(state))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    size = json.loads(state.read_text())["size"]
    assert last.startswith(
        f"Checked {size:,} entries of log demo.carewall.example/log up to the signed "
        f"checkpoint of size {size:,} (root "
    )
    assert "requests decided again with the logged policy and all matched" in last
    assert last.endswith(", 0 to immigration enforcement.")

    again = carewall_audit(url, "--key", key, "--state", str(state))
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr


def test_the_log_serves_its_schema(served: tuple[str, str]) -> None:
    url, _ = served
    r = httpx.get(f"{url}/log/schema", timeout=30)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/schema+json"
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.json()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
