"""Serving logs to ``carewall audit`` in tests: a real uvicorn server, the CLI, and an
in-process transport for sweeps too large to serve one log at a time."""

from __future__ import annotations

import base64
import copy
import json
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from audit_support import ORIGIN
from click.testing import CliRunner, Result
from fastapi import FastAPI

from carewall.api.errors import install_error_handlers
from carewall.api.log import make_log_router
from carewall.audit import AuditReport, AuditState, audit_log
from carewall.clean.certificate import HEADER, certificate_sha256, sign_certificate
from carewall.cli import main
from carewall.errors import CarewallError
from carewall.ledger import Ledger, tables
from carewall.ledger.canonical import canonical
from carewall.ledger.checkpoint import Checkpoint, sign_checkpoint
from carewall.ledger.keys import load_key
from carewall.ledger.merkle import consistency_proof, hash_leaf, root_of
from carewall.ledger.note import Signer
from carewall.ledger.tiles import encode_entry_bundle, parse_tile_path
from carewall.storage import Store, open_store
from carewall.storage.migrate import upgrade


@dataclass
class Log:
    """A ledger on a temp SQLite file with its own writer and a read-only view to serve."""

    store: Store
    writer: Ledger
    path: Path

    def add(self, entries: Sequence[dict[str, Any] | bytes]) -> None:
        datas = [e if isinstance(e, bytes) else canonical(e) for e in entries]
        self.writer.append_raw(datas)
        self.writer.publish()

    @property
    def vkey(self) -> str:
        return self.writer.verifier_key


def make_log(tmp: Path, name: str, key: Path, entries: Sequence[dict[str, Any] | bytes]) -> Log:
    """A signed log of ``entries`` (objects are written canonically, bytes as they are)."""
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
    with serving(app) as url:
        server.url = url
        yield server


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port, in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 180  # generous: a loaded machine must not fail a test
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()


def audit(server: Server, vkey: str, state: Path | None = None) -> Result:
    # These servers serve /log/ alone: the published statistics are tested with a whole
    # instance (test_audit_statistics.py).
    args = ["audit", server.url, "--key", vkey, "--no-statistics"]
    if state is not None:
        args += ["--state", str(state)]
    return CliRunner().invoke(main, args)


def findings(result: Result) -> list[str]:
    """The finding lines the audit printed (each starts with ``entry N (kind):``)."""
    return [ln.strip() for ln in result.stdout.splitlines() if ln.startswith("  entry ")]


def names_entry(result: Result, index: int) -> bool:
    """Whether some finding names entry ``index`` (as its own index or in its message)."""
    pattern = re.compile(rf"\bentry {index}\b")
    return any(pattern.search(line) for line in findings(result))


def statement(result: Result) -> str:
    """The last line of the audit's output: the statement a person can quote."""
    return result.stdout.strip().splitlines()[-1]


# ----- an in-memory log, for sweeps too large to serve one by one ------------------------

MEM_SIGNER = Signer.generate(ORIGIN)
_CANONICAL: dict[str, bytes] = {}
# The recipient's own key (a police force's, say): never the log's.
RECIPIENT_SIGNER = Signer.generate("police.example/deletions")
# Every certificate made by recipient_certificate, served by every MemoryLog as the
# service serves registered ones at /certificates/<hex>.
CERTIFICATES: dict[str, bytes] = {}


def recipient_certificate(
    name: str,
    *,
    holder: str = "met-police",
    categories: Sequence[str] = ("address", "name"),
    records: int = 3,
    issued: str = "2099-01-01T00:00:00Z",
    signer: Signer | None = None,
    published: bool = True,
) -> str:
    """``sha256:<hex>`` of a deletion certificate the recipient signed (distinct per
    ``name``), published for the in-memory logs unless ``published`` is false."""
    body = {
        "type": HEADER,
        "holder": holder,
        "categories": sorted(categories),
        "records": records,
        "issued": issued,
        "note": name,
        "tables": [],
        "post_purge_scan": {"found": 0},
    }
    data = sign_certificate(body, signer or RECIPIENT_SIGNER).encode()
    sha = certificate_sha256(data)
    if published:
        CERTIFICATES[sha] = data
    return sha


def _canonical(entry: dict[str, Any] | bytes) -> bytes:
    """RFC 8785 bytes, remembered: a sweep writes the same entries thousands of times."""
    if isinstance(entry, bytes):
        return entry
    key = json.dumps(entry, sort_keys=True)
    data = _CANONICAL.get(key)
    if data is None:
        data = _CANONICAL[key] = canonical(entry)
    return data


class MemoryLog:
    """The /log checkpoint, entry bundles and consistency proofs of ``entries``, served in
    process; ``size`` says how much of it has been published so far."""

    def __init__(self, entries: Sequence[dict[str, Any] | bytes]) -> None:
        self.datas = [_canonical(e) for e in entries]
        self.leaves = [hash_leaf(d) for d in self.datas]
        self.size = len(self.datas)

    def node(self, refs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        return {(lv, k): root_of(self.leaves[k << lv : (k + 1) << lv]) for lv, k in refs}

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/certificates/"):
            data = CERTIFICATES.get("sha256:" + request.url.path.removeprefix("/certificates/"))
            return httpx.Response(404) if data is None else httpx.Response(200, content=data)
        path = request.url.path.removeprefix("/log/")
        if path == "checkpoint":
            cp = Checkpoint(ORIGIN, self.size, root_of(self.leaves[: self.size]))
            return httpx.Response(200, text=sign_checkpoint(cp, MEM_SIGNER))
        if path == "proof/consistency":
            m, n = int(request.url.params["from"]), int(request.url.params["size"])
            proof = consistency_proof(m, n, self.node)
            return httpx.Response(
                200, json={"proof": [base64.b64encode(h).decode() for h in proof]}
            )
        level, n, width = parse_tile_path(path)
        start, w = n * 256, width or 256
        if level != "entries" or start + w > self.size:
            return httpx.Response(404)
        return httpx.Response(200, content=encode_entry_bundle(self.datas[start : start + w]))

    def audit(
        self, state: AuditState | None = None, *, parallel: bool | None = None
    ) -> tuple[AuditReport, AuditState]:
        """Audit what is published so far through :func:`carewall.audit.audit_log`.

        ``parallel`` None (the default) audits in one process and again in two (a forked
        reader, :mod:`carewall.audit.pipeline`), and fails unless both give the same
        report and state, or raise the same error: so every hostile log of the suite is
        also a case of the two-process audit. True or False runs that mode alone.
        """
        transport = httpx.MockTransport(self.handle)

        def connect() -> httpx.Client:
            return httpx.Client(transport=transport, base_url="http://memory/log/")

        def run(two: bool) -> tuple[AuditReport, AuditState]:
            with connect() as client:
                return audit_log(
                    "http://memory",
                    MEM_SIGNER.vkey(),
                    copy.deepcopy(state),
                    client=client,
                    parallel=two,
                    connect=connect if two else None,
                )

        if parallel is not None:
            return run(parallel)
        outcomes: list[tuple[AuditReport, AuditState] | tuple[str, str]] = []
        for two in (False, True):
            try:
                outcomes.append(run(two))
            except CarewallError as e:
                outcomes.append((type(e).__name__, e.message))
        assert outcomes[0] == outcomes[1], "one process and two disagree"
        one = outcomes[0]
        if isinstance(one[0], str):
            run(False)  # raise the error itself
        assert isinstance(one[0], AuditReport) and isinstance(one[1], AuditState)
        return one[0], one[1]


def audit_in_memory(entries: Sequence[dict[str, Any] | bytes]) -> AuditReport:
    """Audit ``entries`` through :func:`carewall.audit.audit_log`, served in process."""
    return MemoryLog(entries).audit()[0]
