"""Fetch a carewall log over HTTP and verify it against its signed checkpoint.

1. ``/log/checkpoint`` is opened with the given verifier key; the checkpoint's origin MUST
   be the key's name (https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note);
2. if a previous tree is known, the log MUST only have grown: a smaller size, or another
   root at the same size, is a fork; otherwise the RFC 9162 §2.1.4.2 consistency proof from
   the old tree to the new one MUST verify;
3. every new entry is downloaded in C2SP tlog-tiles entry bundles
   (https://c2sp.org/tlog-tiles) and its leaf hash (RFC 9162 §2.1.1, over the bundle's
   bytes, never re-encoded JSON) folded into a compact range, which MUST rebuild the signed
   root: that proves every entry read is the one the log committed to.

Nothing here trusts the server; a failure raises :class:`VerificationError` (the log
misbehaves) or :class:`FetchError` (it could not be read). Something the log signed for but
then says it does not have (a 404 for an entry bundle or a consistency proof its signed
checkpoint covers, or a bundle short of entries) is the log's failure, not the network's:
a VerificationError (exit 1, contract §7). A connection error or another HTTP status (a
500 or 503: the server is in trouble) is a FetchError (exit 2: try again).
"""

from __future__ import annotations

import base64
import binascii
import queue
import threading
from collections.abc import Iterator
from typing import Any

import httpx

from carewall.errors import CarewallError, InputError, VerificationError
from carewall.ledger.checkpoint import Checkpoint, open_checkpoint
from carewall.ledger.merkle import verify_consistency
from carewall.ledger.note import Verifier
from carewall.ledger.tiles import decode_entry_bundle, entries_path, tile_path

__all__ = [
    "TILE_WIDTH",
    "FetchError",
    "check_growth",
    "entry_bundles",
    "first_bad_leaf",
    "get",
    "get_beside",
    "log_base",
    "open_log_checkpoint",
    "prefetched",
    "verifier_for",
]

TILE_WIDTH = 256
_FORK_FIX = "keep both checkpoints (the state file holds the old one) as evidence"


class FetchError(CarewallError):
    """The log could not be fetched (network, HTTP status): nothing was judged."""

    status = 502
    exit_code = 2
    code = "fetch_failed"


def log_base(url: str) -> str:
    """Accept the server's base URL or its ``/log`` URL."""
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise InputError("the log URL must start with http:// or https://", field="URL")
    return base if base.endswith("/log") else base + "/log"


def verifier_for(vkey: str) -> Verifier:
    try:
        return Verifier.from_vkey(vkey.strip())
    except (CarewallError, ValueError) as e:
        raise InputError(
            "the verifier key is malformed",
            field="--key",
            fix="pass the log's key as name+hex8+base64 (from /log/key, out of band)",
        ) from e


def get(client: httpx.Client, path: str, *, allow_404: bool = False) -> httpx.Response | None:
    """GET ``/log/<path>``: the response, None for an allowed 404, else FetchError."""
    try:
        r = client.get(path)
    except httpx.HTTPError as e:
        raise FetchError(
            f"could not fetch /log/{path} ({type(e).__name__})",
            fix="check the URL and that the server is reachable",
        ) from e
    if allow_404 and r.status_code == 404:
        return None
    if r.status_code != 200:
        raise FetchError(f"/log/{path} answered HTTP {r.status_code}", fix="try again later")
    return r


def get_beside(client: httpx.Client, url: str, limit: int, what: str) -> tuple[int, bytes | None]:
    """GET a document published beside the log (``/statistics.json``, ``/certificates/…``):
    its status, and its body for a 200 of at most ``limit`` bytes (None otherwise: read no
    further). A server that cannot answer now (5xx, 429, a broken connection) is a
    FetchError naming ``what``: not audited, never a verdict."""
    try:
        with client.stream("GET", url) as r:
            if r.status_code >= 500 or r.status_code == 429:
                raise FetchError(f"{what} answered HTTP {r.status_code}", fix="try again later")
            if r.status_code != 200:
                return r.status_code, None
            body = bytearray()
            for chunk in r.iter_bytes():
                body += chunk
                if len(body) > limit:
                    return 200, None
            return 200, bytes(body)
    except httpx.HTTPError as e:
        raise FetchError(
            f"could not fetch {what} ({type(e).__name__})",
            fix="check the URL and that the server is reachable",
        ) from e


def _b64_list(values: Any, what: str) -> list[bytes]:
    try:
        return [base64.b64decode(v, validate=True) for v in values]
    except (TypeError, ValueError, binascii.Error) as e:
        raise VerificationError(f"the log served a malformed {what}") from e


def open_log_checkpoint(client: httpx.Client, verifier: Verifier) -> tuple[str, Checkpoint]:
    """The signed note at ``/log/checkpoint`` and the checkpoint it holds."""
    r = get(client, "checkpoint")
    assert r is not None
    note = r.text
    cp = open_checkpoint(note, [verifier])
    if cp.origin != verifier.name:
        raise VerificationError(
            "the checkpoint's origin is not the key's name",
            fix="check that --key is this log's verifier key",
        )
    return note, cp


def check_growth(client: httpx.Client, origin: str, size: int, root: bytes, cp: Checkpoint) -> None:
    """The log at ``cp`` MUST extend the tree (``size``, ``root``) seen before."""
    if cp.origin != origin:
        raise InputError(
            "the state file is for a different log",
            field="--state",
            fix="use a separate --state file per log",
        )
    if cp.size < size:
        raise VerificationError(
            f"fork: the log shrank from {size} to {cp.size} entries", fix=_FORK_FIX
        )
    if cp.size == size:
        if cp.root != root:
            raise VerificationError(
                f"fork: two different roots signed for size {cp.size}", fix=_FORK_FIX
            )
        return
    if size == 0:
        return
    r = get(client, f"proof/consistency?from={size}&size={cp.size}", allow_404=True)
    if r is None:
        raise VerificationError(
            f"the log signed size {cp.size} but does not serve the consistency proof from "
            f"the {size} entries seen before (HTTP 404)",
            fix=_FORK_FIX,
        )
    try:
        proof = _b64_list(r.json()["proof"], "consistency proof")
    except (ValueError, KeyError, TypeError) as e:
        raise VerificationError("the log served a malformed consistency proof") from e
    try:
        verify_consistency(size, cp.size, root, cp.root, proof)
    except VerificationError as e:
        raise VerificationError(
            f"fork: size {cp.size} is not consistent with the {size} seen before", fix=_FORK_FIX
        ) from e


def _fetch_bundle(client: httpx.Client, n: int, width: int) -> list[bytes]:
    """Entry bundle ``n`` cut to ``width`` entries; a full bundle stands in for a partial."""
    full = width == TILE_WIDTH
    r = get(client, entries_path(n, None if full else width).removeprefix("/"), allow_404=True)
    if r is None and not full:
        r = get(client, entries_path(n, None).removeprefix("/"), allow_404=True)
    if r is None:
        raise VerificationError(
            f"the log's signed checkpoint covers entry bundle {n}, but the log does not "
            "serve it (HTTP 404)",
            fix="keep the checkpoint as evidence: the log signed for entries it cannot show",
        )
    try:
        bundle = decode_entry_bundle(r.content)
    except (CarewallError, ValueError) as e:
        raise VerificationError(f"entry bundle {n} is malformed") from e
    if len(bundle) < width:
        raise VerificationError(f"entry bundle {n} holds fewer entries than the log's size")
    return bundle[:width]


def entry_bundles(client: httpx.Client, start: int, size: int) -> Iterator[tuple[int, list[bytes]]]:
    """The entries ``start`` to ``size - 1``, one bundle at a time, with the first's index."""
    for k in range(start // TILE_WIDTH, -(-size // TILE_WIDTH)):
        width = min(TILE_WIDTH, size - k * TILE_WIDTH)
        bundle = _fetch_bundle(client, k, width)
        first = max(start, k * TILE_WIDTH)
        yield first, bundle[first - k * TILE_WIDTH :]


_Bundle = tuple[int, list[bytes]]
_DONE = object()


def prefetched(bundles: Iterator[_Bundle], ahead: int = 2) -> Iterator[_Bundle]:
    """``bundles`` (from :func:`entry_bundles`), fetched up to ``ahead`` in a thread.

    The server prepares the next bundles while this one is checked. The same bundles in
    the same order, and the same exceptions where the loop would have met them: an error
    fetching a bundle is raised when that bundle is due, after every bundle before it.
    The thread is done with the client when the iteration ends, however it ends.
    """
    out: queue.Queue[Any] = queue.Queue(ahead)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in bundles:
                if not put(item):
                    return
        except BaseException as e:  # raised in the caller's thread when its turn comes
            put(e)
            return
        put(_DONE)

    thread = threading.Thread(target=run, name="audit-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def first_bad_leaf(client: httpx.Client, start: int, leaves: bytes) -> int | None:
    """Best-effort hint: the first new entry whose hash differs from the log's own tiles."""
    count = len(leaves) // 32
    if count == 0:
        return None
    for k in range(start // TILE_WIDTH, (start + count - 1) // TILE_WIDTH + 1):
        lo = max(start, k * TILE_WIDTH)
        hi = min(start + count, (k + 1) * TILE_WIDTH)
        width = hi - k * TILE_WIDTH
        path = tile_path(0, k, None if width == TILE_WIDTH else width).removeprefix("/")
        try:
            r = get(client, path, allow_404=True)
        except FetchError:
            return None
        if r is None:
            return None
        for i in range(lo, hi):
            off = (i - k * TILE_WIDTH) * 32
            if r.content[off : off + 32] != leaves[(i - start) * 32 : (i - start + 1) * 32]:
                return i
    return None
