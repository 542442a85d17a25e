"""Asking witnesses: send each new checkpoint to each witness, keep the cosignatures.

Spec: https://c2sp.org/tlog-witness (client side). For each configured witness, the newest
signed checkpoint is sent with a consistency proof from the size the witness last said it
holds (0 at first). A 409 answer names the witness's size: the request is rebuilt from it
once. A 200 answer's lines are kept only if one is a valid cosignature/v1 by that witness's
key on this checkpoint (lines from other keys are ignored, as the spec says). Anything else
(down, slow, 4xx, 5xx, a witness ahead of the log) is recorded as the witness's error and
retried later with exponential backoff. None of this runs on the write path: the server
runs :func:`witness_forever` as a background task after checkpoints are signed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from carewall.errors import CarewallError
from carewall.ledger import Ledger
from carewall.ledger.checkpoint import parse_checkpoint
from carewall.ledger.note import parse_note
from carewall.ledger.publisher import latest
from carewall.witness import store
from carewall.witness.config import AskedWitness
from carewall.witness.cosignature import merge_cosignatures
from carewall.witness.protocol import format_add_checkpoint, parse_cosignatures, parse_size

__all__ = ["Outcome", "ask_witness", "cosigned_checkpoint", "witness_forever"]

_log = logging.getLogger("carewall.witness")
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_BACKOFF = 60.0


@dataclass(frozen=True)
class Outcome:
    witness: str
    cosigned: bool
    error: str | None = None


def _backoff(failures: int) -> float:
    return float(min(MAX_BACKOFF, 0.5 * 2 ** min(failures, 10)))


def _record(
    ledger: Ledger,
    w: AskedWitness,
    prev: store.WitnessStatus | None,
    *,
    size: int | None,
    error: str | None,
    now: float,
) -> Outcome:
    failures = 0 if error is None else (prev.failures + 1 if prev else 1)
    with ledger.store.write() as conn:
        store.set_status(
            conn,
            w.name,
            size=size,
            cosigned_size=prev.cosigned_size if prev else None,
            error=error,
            failures=failures,
            retry_at=now + _backoff(failures) if error else 0.0,
        )
    return Outcome(w.name, False, error)


def ask_witness(
    ledger: Ledger,
    w: AskedWitness,
    http: httpx.Client,
    clock: Callable[[], float] = time.time,
) -> Outcome | None:
    """Ask ``w`` to cosign the log's newest checkpoint, if it has not and is not backing off.

    None when there was nothing to do. Never raises for the witness's failures.
    """
    with ledger.store.read() as conn:
        newest = latest(conn)
        prev = store.statuses(conn).get(w.name)
    if newest is None:
        return None
    size, note = newest
    now = clock()
    if prev is not None and (prev.cosigned_size == size or prev.retry_at > now):
        return None
    body_text = parse_note(note).text
    old = prev.size if prev is not None and prev.size is not None else 0
    for _ in range(2):  # the second try starts from the size a 409 names
        if old > size:
            return _record(
                ledger,
                w,
                prev,
                size=old,
                now=now,
                error=f"the witness holds size {old}, beyond this log's {size}: it has seen "
                "another view of this log",
            )
        proof = [] if old in (0, size) else ledger.consistency_proof(old, size)
        try:
            r = http.post(
                w.url + "/add-checkpoint",
                content=format_add_checkpoint(old, proof, note),
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=TIMEOUT,
            )
        except httpx.HTTPError as e:
            return _record(
                ledger,
                w,
                prev,
                size=old if prev else None,
                now=now,
                error=f"unreachable ({type(e).__name__})",
            )
        if r.status_code == 409:
            try:
                old = parse_size(r.content)
            except CarewallError:
                return _record(
                    ledger, w, prev, size=None, now=now, error="HTTP 409 with a malformed size"
                )
            continue
        if r.status_code != 200:
            return _record(
                ledger, w, prev, size=old, now=now, error=f"HTTP {r.status_code}: {_reason(r)}"
            )
        return _keep(ledger, w, prev, size, body_text, r.content, now)
    return _record(ledger, w, prev, size=old, now=now, error="HTTP 409 twice in a row")


def _reason(r: httpx.Response) -> str:
    try:
        return str(r.json().get("message", ""))[:120]
    except ValueError:
        return r.text[:120].strip()


def _keep(
    ledger: Ledger,
    w: AskedWitness,
    prev: store.WitnessStatus | None,
    size: int,
    body_text: str,
    answer: bytes,
    now: float,
) -> Outcome:
    try:
        sigs = parse_cosignatures(answer, body_text)
    except CarewallError as e:
        return _record(ledger, w, prev, size=size, now=now, error=e.message)
    for sig in sigs:
        ts = w.key.verify(body_text, sig)
        if ts is not None:
            with ledger.store.write() as conn:
                store.save_cosignature(conn, size, w.name, sig.line(), ts)
                store.set_status(
                    conn,
                    w.name,
                    size=size,
                    cosigned_size=size,
                    error=None,
                    failures=0,
                    retry_at=0.0,
                )
            return Outcome(w.name, True)
    return _record(
        ledger,
        w,
        prev,
        size=size,
        now=now,
        error="the answer holds no valid cosignature by this witness's key",
    )


def with_cosignatures(ledger: Ledger, note: str) -> str:
    """``note`` (a checkpoint of ``ledger``) with every cosignature collected for its size."""
    size = parse_checkpoint(parse_note(note).text).size
    with ledger.store.read() as conn:
        lines = store.cosignatures(conn, size)
    return merge_cosignatures(note, lines)


def cosigned_checkpoint(ledger: Ledger) -> str:
    """The newest signed checkpoint with every cosignature collected for it so far."""
    return with_cosignatures(ledger, ledger.checkpoint())


async def witness_forever(
    ledger: Ledger, witnesses: Sequence[AskedWitness], tick: float = 0.25
) -> None:
    """Ask every witness, each in its own loop, so a slow one never holds up another."""

    async def one(w: AskedWitness) -> None:
        with httpx.Client() as http:
            while True:
                try:
                    await asyncio.to_thread(ask_witness, ledger, w, http)
                except CarewallError as e:  # the database may be down; try next tick
                    _log.warning("witness %s: %s", w.name, e.code)
                await asyncio.sleep(tick)

    tasks = [asyncio.create_task(one(w)) for w in witnesses]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
