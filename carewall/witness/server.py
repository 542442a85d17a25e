"""Being a witness: the C2SP tlog-witness ``add-checkpoint`` endpoint over durable state.

Spec: https://c2sp.org/tlog-witness. For each request, in the order the spec gives:
malformed body 400; unknown origin 404; no valid signature by a trusted key for the origin
(or a trusted key's bad signature) 403; old size above the checkpoint's 400; old size not
the size this witness last cosigned 409 with that size (``text/x.tlog.size``); a bad empty
tree, a proof with old size 0, an unverifiable proof or another root at the same size 422.
Only then is the record moved, by compare-and-swap in one transaction that commits before
the cosignature is returned, so nothing inconsistent with what was cosigned is ever cosigned,
and a witness killed mid-request loses nothing it vouched for.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from carewall.errors import CarewallError, VerificationError
from carewall.ledger.checkpoint import parse_checkpoint
from carewall.ledger.merkle import EMPTY_ROOT, verify_consistency
from carewall.ledger.note import open_note, parse_note
from carewall.storage.db import Store
from carewall.witness import store
from carewall.witness.config import WitnessedLog
from carewall.witness.cosignature import Cosigner, merge_cosignatures
from carewall.witness.protocol import MAX_BODY, SIZE_TYPE, format_size, parse_add_checkpoint

__all__ = ["Answer", "Witness", "make_witness_app"]

_TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    media_type: str


def _error(status: int, code: str, message: str, field: str | None = None) -> Answer:
    e = CarewallError(message, field=field)
    e.code = code
    return Answer(status, json.dumps(e.diagnostics()).encode(), "application/json")


class Witness:
    """One witness key over one store, for the logs in ``logs`` (origin -> keys)."""

    def __init__(
        self,
        db: Store,
        cosigner: Cosigner,
        logs: Mapping[str, WitnessedLog],
        clock: Callable[[], int] = lambda: int(time.time()),
    ) -> None:
        self.store = db
        self.cosigner = cosigner
        self.logs = dict(logs)
        self.clock = clock
        # Called after the checks and the compare-and-swap, before the commit (crash tests).
        self.before_commit: Callable[[], None] | None = None

    def add_checkpoint(self, body: bytes) -> Answer:
        try:
            req = parse_add_checkpoint(body)
            note = parse_note(req.note)
            cp = parse_checkpoint(note.text)
        except CarewallError as e:
            return _error(400, "bad_request", e.message, e.field)
        log = self.logs.get(cp.origin)
        if log is None:
            return _error(404, "unknown_log", "this witness does not witness that origin", "origin")
        try:
            opened = open_note(req.note, list(log.verifiers))
        except VerificationError as e:
            return _error(403, "forbidden", e.message, "checkpoint")
        if req.old_size > cp.size:
            return _error(400, "bad_request", "old size is above the checkpoint's size", "old")
        if cp.size == 0 and cp.root != EMPTY_ROOT:
            return _error(422, "inconsistent", "a size-0 checkpoint must have the empty root")
        # The log's verified signatures only: other lines are not ours to repeat.
        kept = parse_note(req.note).text + "\n" + "".join(s.line() for s in opened.verified)
        with self.store.write() as conn:
            old = store.latest(conn, cp.origin)
            have = 0 if old is None else old[0]
            if req.old_size != have:
                return Answer(409, format_size(have), SIZE_TYPE)
            problem = _check_consistency(req.old_size, old, cp.size, cp.root, req.proof)
            if problem is not None:
                return _error(422, "inconsistent", problem, "proof")
            line = self.cosigner.cosign(note.text, self.clock()).line()
            cosigned = merge_cosignatures(kept, [line])
            if not store.advance(conn, cp.origin, old, cp.size, bytes(cp.root), cosigned):
                # Another request moved the record since we read it: answer as the spec asks.
                raise _Moved()
            if self.before_commit is not None:
                self.before_commit()
        return Answer(200, line.encode(), _TEXT)

    def checkpoint(self, origin_hash: str) -> Answer:
        """The latest cosigned checkpoint for the log whose origin hashes to ``origin_hash``."""
        for origin in self.logs:
            if hashlib.sha256(origin.encode()).hexdigest() == origin_hash:
                with self.store.read() as conn:
                    note = store.latest_note(conn, origin)
                if note is not None:
                    return Answer(200, note.encode(), _TEXT)
        return _error(404, "not_found", "no cosigned checkpoint for that origin", "origin")


class _Moved(Exception):
    """The compare-and-swap lost a race: roll back and answer 409."""


def _check_consistency(
    old_size: int, old: tuple[int, bytes] | None, size: int, root: bytes, proof: tuple[bytes, ...]
) -> str | None:
    if old_size == 0:
        return None if not proof else "the proof must be empty when the old size is 0"
    assert old is not None  # old_size == the stored size > 0
    try:
        verify_consistency(old_size, size, old[1], root, list(proof))
    except VerificationError as e:
        return f"not consistent with the checkpoint this witness cosigned: {e.message}"
    return None


async def _read_body(request: Request) -> bytes | None:
    """The body, or None when it is over MAX_BODY (checked while reading, not after)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def make_witness_app(witness: Witness, prefix: str = "") -> FastAPI:
    """The witness's HTTP interface: ``POST <prefix>/add-checkpoint`` and, for monitors,
    ``GET <prefix>/<sha256 hex of origin>/checkpoint``."""
    app = FastAPI(title="carewall witness", docs_url=None, redoc_url=None, openapi_url=None)

    def respond(a: Answer) -> Response:
        return Response(a.body, status_code=a.status, media_type=a.media_type)

    @app.post(f"{prefix}/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        body = await _read_body(request)
        if body is None:
            return respond(_error(413, "too_large", f"the body is over {MAX_BODY} bytes"))
        while True:
            try:
                return respond(await asyncio.to_thread(witness.add_checkpoint, body))
            except _Moved:
                continue  # re-read the record: the answer is now 409 (or a cosignature)
            except CarewallError as e:
                return JSONResponse(e.diagnostics(), status_code=e.status)

    @app.get(prefix + "/{origin_hash}/checkpoint")
    def monitor(origin_hash: str) -> Response:
        return respond(witness.checkpoint(origin_hash))

    @app.get(prefix + "/")
    def about() -> Response:
        text = f"carewall witness {witness.cosigner.vkey()}\n" + "".join(
            f"log {o}\n" for o in sorted(witness.logs)
        )
        return Response(text, media_type=_TEXT)

    return app
