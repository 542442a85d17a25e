"""``carewall audit`` against a real uvicorn server on 127.0.0.1 serving the /log routes."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn
from click.testing import CliRunner, Result
from fastapi import FastAPI

from carewall.api.errors import install_error_handlers
from carewall.api.log import make_log_router
from carewall.cli import main
from carewall.ledger import Ledger, tables
from carewall.ledger.keys import load_key
from carewall.ledger.note import Signer
from carewall.storage import Store, open_store
from carewall.storage.migrate import upgrade

ORIGIN = "carewall.test/audit-log"


def notice(i: int, status: str = "sent") -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "notice",
        "time": "2026-11-21T10:00:00Z",
        "request": f"req-{i:06d}",
        "subject": f"{i:064x}",
        "status": status,
    }


def release(i: int, **changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "v": 1,
        "kind": "release",
        "time": "2026-11-21T10:00:00Z",
        "request": f"req-{i:06d}",
        "holder": "st-marys-primary",
        "holder_function": "education",
        "requester": "met-police",
        "requester_function": "police",
        "purpose": "safeguarding_child",
        "legal_basis": "children_act_1989_s47",
        "other_bases": [],
        "offence": None,
        "court_order": False,
        "onward_recipients": [],
        "categories": ["name", "address"],
        "subjects": 1,
        "victims_or_witnesses": 0,
        "recipient": "met-police",
        "recipient_function": "police",
        "reviewer": "dpo-st-marys",
        "policy": "sha256:" + "0" * 64,
    }
    entry.update(changes)
    return entry


@dataclass
class Log:
    """A ledger on a temp SQLite file with its own writer and a read-only view to serve."""

    store: Store
    writer: Ledger
    path: Path

    def add(self, entries: list[dict[str, Any]]) -> None:
        self.writer.append(entries)
        self.writer.publish()

    @property
    def vkey(self) -> str:
        return self.writer.verifier_key


def make_log(tmp: Path, name: str, key: Path, entries: list[dict[str, Any]]) -> Log:
    path = tmp / f"{name}.db"
    store = open_store(f"sqlite:///{path}")
    if key.exists():
        # A second history signed with the same key: what a log rewriting its past would do.
        first = load_key(key)
        upgrade(store)
        with store.write() as conn:
            conn.execute(
                tables.meta.insert(),
                [
                    {"key": "origin", "value": ORIGIN},
                    {"key": "verifier_key", "value": first.vkey()},
                ],
            )
        writer = Ledger.open(store, key)
    else:
        writer = Ledger.create(store, ORIGIN, key)
    log = Log(store, writer, path)
    log.add(entries)
    return log


@dataclass
class Server:
    """A uvicorn server whose served log can be swapped between requests."""

    url: str = ""
    logs: dict[str, Ledger] = field(default_factory=dict)
    current: str = ""

    def serve(self, log: Log) -> None:
        self.current = str(log.path)
        if self.current not in self.logs:
            self.logs[self.current] = Ledger.open(log.store)


@contextmanager
def running(server: Server) -> Iterator[Server]:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(make_log_router(lambda: server.logs[server.current]))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def server() -> Iterator[Server]:
    with running(Server()) as s:
        yield s


def audit(server: Server, vkey: str, state: Path | None = None) -> Result:
    args = ["audit", server.url, "--key", vkey]
    if state is not None:
        args += ["--state", str(state)]
    return CliRunner().invoke(main, args)


def assert_clean_failure(result: Result, code: int, words: str) -> None:
    assert result.exit_code == code, result.output
    assert words in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_honest_log_passes_twice_incrementally(tmp_path: Path, server: Server) -> None:
    log = make_log(tmp_path, "a", tmp_path / "a.key", [notice(i) for i in range(300)])
    server.serve(log)
    state = tmp_path / "state.json"
    first = audit(server, log.vkey, state)
    assert first.exit_code == 0, first.output
    assert "300" in first.stdout
    saved = json.loads(state.read_text())
    assert (saved["origin"], saved["size"]) == (ORIGIN, 300)

    log.add([notice(i) for i in range(300, 520)] + [release(520)])
    second = audit(server, log.vkey, state)
    assert second.exit_code == 0, second.output
    assert "221" in second.stdout  # only the new entries were fetched and checked
    assert json.loads(state.read_text())["size"] == 521

    third = audit(server, log.vkey, state)  # nothing new: same size, same root
    assert third.exit_code == 0, third.output

    # A state file whose frontier no longer matches its root was altered: refuse to use it.
    saved = json.loads(state.read_text())
    saved["frontier"][0] = saved["root"] if saved["frontier"][0] != saved["root"] else ""
    state.write_text(json.dumps(saved))
    assert_clean_failure(audit(server, log.vkey, state), 2, "--state")


def test_rewritten_history_with_the_same_key_fails(tmp_path: Path, server: Server) -> None:
    key = tmp_path / "a.key"
    honest = make_log(tmp_path, "a", key, [notice(i) for i in range(40)])
    server.serve(honest)
    state = tmp_path / "state.json"
    assert audit(server, honest.vkey, state).exit_code == 0
    before = state.read_text()

    entries = [notice(i) for i in range(60)]
    entries[7] = notice(7, status="deferred")
    forked = make_log(tmp_path, "b", key, entries)
    assert forked.vkey == honest.vkey
    server.serve(forked)
    result = audit(server, honest.vkey, state)
    assert_clean_failure(result, 1, "fork")
    assert state.read_text() == before  # the evidence is kept


def test_same_size_different_root_is_a_fork(tmp_path: Path, server: Server) -> None:
    key = tmp_path / "a.key"
    honest = make_log(tmp_path, "a", key, [notice(i) for i in range(10)])
    server.serve(honest)
    state = tmp_path / "state.json"
    assert audit(server, honest.vkey, state).exit_code == 0
    forked = make_log(tmp_path, "b", key, [notice(i, status="deferred") for i in range(10)])
    server.serve(forked)
    assert_clean_failure(audit(server, honest.vkey, state), 1, "fork")


def test_a_log_that_shrinks_fails(tmp_path: Path, server: Server) -> None:
    key = tmp_path / "a.key"
    honest = make_log(tmp_path, "a", key, [notice(i) for i in range(50)])
    server.serve(honest)
    state = tmp_path / "state.json"
    assert audit(server, honest.vkey, state).exit_code == 0
    shorter = make_log(tmp_path, "b", key, [notice(i) for i in range(30)])
    server.serve(shorter)
    assert_clean_failure(audit(server, honest.vkey, state), 1, "shrank from 50 to 30")


def test_an_entry_modified_after_signing_fails(tmp_path: Path, server: Server) -> None:
    log = make_log(tmp_path, "a", tmp_path / "a.key", [notice(i) for i in range(20)])
    altered = json.dumps(notice(7, status="deferred"), separators=(",", ":"), sort_keys=True)
    with log.store.write() as conn:
        conn.execute(
            sa.text("UPDATE ledger_entries SET data = :d WHERE idx = 7"), {"d": altered.encode()}
        )
    server.serve(log)
    result = audit(server, log.vkey)
    assert_clean_failure(result, 1, "first differing entry: 7")


def test_a_release_breaking_the_pledge_is_flagged(tmp_path: Path, server: Server) -> None:
    bad = release(
        3,
        requester="home-office-ie",
        requester_function="immigration_enforcement",
        recipient="home-office-ie",
        recipient_function="immigration_enforcement",
    )
    log = make_log(
        tmp_path, "a", tmp_path / "a.key", [notice(0), release(1), notice(2), bad, notice(4)]
    )
    server.serve(log)
    state = tmp_path / "state.json"
    result = audit(server, log.vkey, state)
    assert result.exit_code == 1
    assert "pledge/no-immigration-recipient" in result.stdout
    row = next(ln for ln in result.stdout.splitlines() if "no-immigration-recipient" in ln)
    assert " 3 " in row
    assert "break the pledge" in result.stderr

    # An incremental run still reports it: a violation in the log is never forgotten.
    log.add([notice(5)])
    again = audit(server, log.vkey, state)
    assert again.exit_code == 1
    assert "flagged in earlier audits" in again.stdout


def test_a_non_canonical_entry_fails(tmp_path: Path, server: Server) -> None:
    log = make_log(tmp_path, "a", tmp_path / "a.key", [notice(0)])
    log.writer.append_raw([b'{"v": 1, "kind": "notice"}'])
    log.writer.publish()
    server.serve(log)
    assert_clean_failure(audit(server, log.vkey), 1, "entry 1 is not in RFC 8785 canonical form")


def test_a_wrong_key_fails(tmp_path: Path, server: Server) -> None:
    log = make_log(tmp_path, "a", tmp_path / "a.key", [notice(0), notice(1)])
    server.serve(log)
    impostor = Signer.generate(ORIGIN).vkey()
    result = audit(server, impostor)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    other_name = Signer.generate("someone.else/log").vkey()
    assert audit(server, other_name).exit_code == 1


def test_usage_and_network_errors_exit_2(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    vkey = Signer.generate(ORIGIN).vkey()
    down = CliRunner().invoke(main, ["audit", f"http://127.0.0.1:{port}", "--key", vkey])
    assert_clean_failure(down, 2, "could not fetch")
    bad_key = CliRunner().invoke(main, ["audit", f"http://127.0.0.1:{port}", "--key", "nope"])
    assert_clean_failure(bad_key, 2, "--key")
    state = tmp_path / "state.json"
    state.write_text("{not json")
    bad_state = CliRunner().invoke(
        main, ["audit", f"http://127.0.0.1:{port}", "--key", vkey, "--state", str(state)]
    )
    assert_clean_failure(bad_state, 2, "--state")
