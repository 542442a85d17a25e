"""fsck for a stored ledger: re-derive every hash from the entries and check every checkpoint.

Entries are streamed in index order, in chunks aligned to ``2**_CHUNK_LEVEL`` leaves. For
each chunk the leaf hashes are recomputed from the entry bytes and then every perfect
subtree above them, level by level, and each level is compared with the stored node hashes
by one range scan. A mismatch counts as a fault *of that node* only when both of its
recomputed children matched what is stored, so a changed entry is reported at its own
index (not at the subtrees above it), and a changed stored node at the first leaf it covers.
Nodes with no entries under them, gaps in the indices and every stored checkpoint
(signature, origin, size, and root at its size) are checked too. Signatures are checked
with the *pinned* key when one is given (:mod:`.pin`), which must also be the key and origin
the database records; without a pin only with the stored key, which proves self-consistency
and nothing more: whoever can write the database can re-key it and re-sign a rewritten log.
Chunks below level ``_CHUNK_LEVEL`` are independent, so a big log is split into spans that
worker processes (one per core, each with its own read connection) check in parallel:
forked, when this process has no other thread, from 2**17 entries; spawned otherwise, from
2**20.
"""

from __future__ import annotations

import bisect
import hashlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext

from sqlalchemy.engine import Connection

from carewall import collector
from carewall.errors import CarewallError
from carewall.ledger import merkle
from carewall.ledger.checkpoint import open_checkpoint
from carewall.ledger.merkle import NodeRef
from carewall.ledger.note import Verifier
from carewall.ledger.pin import Pin, key_problem
from carewall.storage.db import Store, open_store, placeholder
from carewall.storage.db import driver_rows as rows

__all__ = ["Fault", "VerifyReport", "verify_ledger"]

_CHUNK_LEVEL = 16
_MAX_FAULTS = 100
_PARALLEL_MIN = 1 << 20  # entries; below this, spawning workers costs more than it saves
_FORK_MIN = 1 << 17  # entries; below this, even forked workers are not worth their start
_MAX_WORKERS = 8
_SPANS_PER_WORKER = 4
_MISSING = b"\x00" * 32

Progress = Callable[[int, int], None]


@dataclass(frozen=True, order=True)
class Fault:
    """One problem: ``index`` is the first entry index it concerns."""

    index: int
    problem: str


@dataclass
class VerifyReport:
    size: int = 0
    nodes: int = 0
    checkpoints: int = 0
    seconds: float = 0.0
    faults: list[Fault] = field(default_factory=list)
    fault_count: int = 0
    pinned: Pin | None = None  # the published key the checkpoints were checked against
    key_problem: str | None = None  # why the stored key is not the pinned one

    @property
    def ok(self) -> bool:
        return self.fault_count == 0 and self.key_problem is None

    @property
    def first(self) -> Fault | None:
        return min(self.faults) if self.faults else None

    @property
    def entries_per_second(self) -> float:
        return self.size / self.seconds if self.seconds > 0 else 0.0

    def add(self, index: int, problem: str) -> None:
        self.fault_count += 1
        self.faults.append(Fault(index, problem))
        if len(self.faults) > _MAX_FAULTS:
            self.faults.sort()
            self.faults.pop()


class _Checker:
    def __init__(self, conn: Connection, report: VerifyReport, needed: set[NodeRef]) -> None:
        self.conn = conn
        self.report = report
        self.p = placeholder(conn)
        self.needed_by_level: dict[int, list[int]] = {}
        for lv, ix in sorted(needed):
            self.needed_by_level.setdefault(lv, []).append(ix)
        self.recomputed: dict[NodeRef, bytes] = {}

    def stored(self, level: int, first: int, count: int) -> list[bytes] | dict[int, bytes]:
        p = self.p
        where = f"FROM ledger_nodes WHERE level = {p} AND idx >= {p} AND idx < {p} ORDER BY idx"
        span = (level, first, first + count)
        # Without the index column first, as for the entries: the gap-free case needs only
        # the count (the key is unique, so `count` rows in the range are every index once).
        found = rows(self.conn, f"SELECT hash {where}", span)
        if len(found) == count:
            return [r[0] for r in found]
        return {int(r[0]): bytes(r[1]) for r in rows(self.conn, f"SELECT idx, hash {where}", span)}

    def level(
        self,
        level: int,
        first: int,
        hashes: list[bytes],
        child_bad: set[int],
        stored: list[bytes] | dict[int, bytes] | None = None,
    ) -> set[int]:
        """Compare recomputed ``hashes`` at (level, first…) with storage; return bad indices."""
        self.report.nodes += len(hashes)
        for ix in self._needed(level, first, first + len(hashes)):
            self.recomputed[(level, ix)] = hashes[ix - first]
        if stored is None:
            stored = self.stored(level, first, len(hashes))
        if stored == hashes:
            return set()
        bad: set[int] = set()
        for j, h in enumerate(hashes):
            ix = first + j
            s = stored[j] if isinstance(stored, list) else stored.get(ix)
            if s == h:
                continue
            bad.add(ix)
            if level and (2 * ix in child_bad or 2 * ix + 1 in child_bad):
                continue  # a consequence of a fault below, already reported
            what = "no stored hash" if s is None else "stored hash differs from the entries"
            if level == 0:
                self.report.add(ix, f"entry {ix}: {what}")
            else:
                self.report.add(ix << level, f"tree node ({level}, {ix}): {what}")
        return bad

    def _needed(self, level: int, lo: int, hi: int) -> list[int]:
        idxs = self.needed_by_level.get(level)
        if not idxs:
            return []
        return idxs[bisect.bisect_left(idxs, lo) : bisect.bisect_left(idxs, hi)]

    def climb(
        self, level: int, first: int, hashes: list[bytes], bad: set[int], top: int
    ) -> tuple[list[bytes], set[int]]:
        """Check levels ``level``..``top`` bottom-up from ``hashes``; return level ``top``."""
        while True:
            if level == top or len(hashes) < 2:
                return (hashes if level == top else []), bad
            hashes = _parents(hashes)
            level += 1
            first >>= 1
            bad = self.level(level, first, hashes, bad)


_LEAF_PREFIX = hashlib.sha256(b"\x00")


def _leaves(datas: Iterable[bytes]) -> list[bytes]:
    # RFC 9162 leaf hash, inlined: fsck hashes every entry and call overhead is half the cost.
    # A copy of a hash already fed the 0x00 prefix saves copying each entry to prefix it.
    # tests/unit/ledger/test_verify.py pins it to merkle.hash_leaf.
    start = _LEAF_PREFIX.copy
    out: list[bytes] = []
    append = out.append
    for d in datas:
        h = start()
        h.update(d)
        append(h.digest())
    return out


def _parents(hashes: list[bytes]) -> list[bytes]:
    """Every complete pair's parent (RFC 9162 node hash, inlined as :func:`_leaves`)."""
    sha, prefix = hashlib.sha256, b"\x01"
    it = iter(hashes)
    return [sha(prefix + left + right).digest() for left, right in zip(it, it, strict=False)]


def _verify_span(
    conn: Connection,
    report: VerifyReport,
    needed: set[NodeRef],
    lo: int,
    hi: int,
    progress: Progress | None,
    size: int,
) -> tuple[list[bytes], set[int], dict[NodeRef, bytes]]:
    """Check entries ``[lo, hi)`` (``lo`` chunk-aligned) up to level ``_CHUNK_LEVEL``.

    Returns the recomputed chunk roots, which of them are bad, and the recomputed hashes of
    the ``needed`` nodes in the span. Spans are independent, so they can run in parallel.
    """
    p = placeholder(conn)
    checker = _Checker(conn, report, needed)
    chunk = 1 << _CHUNK_LEVEL
    tops: list[bytes] = []
    top_bad: set[int] = set()
    for a in range(lo, hi, chunk):
        n = min(chunk, hi - a)
        # Without the index column first: the common, gap-free case needs only the count.
        found = rows(
            conn,
            f"SELECT data, hash FROM ledger_entries WHERE idx >= {p} AND idx < {p} ORDER BY idx",
            (a, a + n),
        )
        stored: list[bytes] | dict[int, bytes]
        if len(found) == n:
            # Both drivers return bytes for BLOB/bytea, so rows are used as they come.
            leaves = _leaves([r[0] for r in found])
            stored = [r[1] for r in found]
        else:
            found = rows(
                conn,
                f"SELECT idx, data, hash FROM ledger_entries WHERE idx >= {p} AND idx < {p} "
                "ORDER BY idx",
                (a, a + n),
            )
            by_idx = {int(r[0]): r for r in found}
            stored = {ix: bytes(r[2]) for ix, r in by_idx.items()}
            leaves = []
            for ix in range(a, a + n):
                row = by_idx.get(ix)
                if row is None:
                    report.add(ix, f"entry {ix} is missing")
                leaves.append(_MISSING if row is None else _leaves([bytes(row[1])])[0])
        bad = checker.level(0, a, leaves, set(), stored)
        upper, bad = checker.climb(0, a, leaves, bad, _CHUNK_LEVEL)
        tops.extend(upper)
        top_bad |= bad
        if progress is not None:
            progress(a + n, size)
    return tops, top_bad, checker.recomputed


_SpanResult = tuple[VerifyReport, list[bytes], set[int], dict[NodeRef, bytes]]


def _span_worker(url: str, needed: set[NodeRef], lo: int, hi: int, size: int) -> _SpanResult:
    """One span in a worker process, on its own read connection."""
    store = open_store(url)
    try:
        report = VerifyReport()
        with collector.paused(), store.read() as conn:
            tops, bad, recomputed = _verify_span(conn, report, needed, lo, hi, None, size)
        return report, tops, bad, recomputed
    finally:
        store.dispose()


def _workers(store: Store, size: int) -> tuple[int, BaseContext | None]:
    """How many processes to re-hash with, and how to start them: all cores for a big log in
    a file or a server.

    Hashing is CPU-bound Python, so threads would not help; each process has its own read
    connection. A process with no other thread forks its workers (milliseconds each), so
    any log of ``_FORK_MIN`` entries or more is split; otherwise (a server, a progress
    thread) forking could copy a lock another thread holds, and the workers are spawned
    (about a second each, importing everything), worth it from ``_PARALLEL_MIN``.
    """
    if size < _FORK_MIN:
        return 1, None
    if store.is_sqlite and store.writer.url.database in (None, "", ":memory:"):
        return 1, None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    workers = max(1, min(cores, _MAX_WORKERS))
    if workers == 1:
        return 1, None
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return workers, multiprocessing.get_context("fork")
    if size < _PARALLEL_MIN:
        return 1, None
    return workers, multiprocessing.get_context("spawn")


def _verify_spans(
    store: Store, report: VerifyReport, needed: set[NodeRef], size: int, progress: Progress | None
) -> tuple[list[bytes], set[int], dict[NodeRef, bytes]]:
    workers, ctx = _workers(store, size)
    if ctx is None:
        with store.read() as conn:
            return _verify_span(conn, report, needed, 0, size, progress, size)
    if ctx.get_start_method() == "fork":
        # No connection may cross a fork (SQLite's locks are per process): close the pooled
        # ones; each worker opens its own, and this process reopens lazily afterwards.
        store.dispose()
    chunk = 1 << _CHUNK_LEVEL
    chunks = -(-size // chunk)
    # A few spans per worker, so progress moves and a slow core does not hold up the end.
    per = max(1, -(-chunks // (workers * _SPANS_PER_WORKER)))
    spans = [(a, min(size, a + per * chunk)) for a in range(0, size, per * chunk)]
    done: list[_SpanResult] = []
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            results = pool.map(
                _span_worker,
                [store.url] * len(spans),
                [needed] * len(spans),
                [lo for lo, _ in spans],
                [hi for _, hi in spans],
                [size] * len(spans),
            )
            for (_, hi), result in zip(spans, results, strict=True):
                done.append(result)
                if progress is not None:
                    progress(hi, size)
    except Exception:
        # Workers could not run (e.g. a caller's script without a ``__main__`` guard) or
        # failed: check everything here instead, which also raises any real error properly.
        with store.read() as conn:
            return _verify_span(conn, report, needed, 0, size, progress, size)
    tops: list[bytes] = []
    top_bad: set[int] = set()
    recomputed: dict[NodeRef, bytes] = {}
    for sub, span_tops, span_bad, span_rec in done:
        report.nodes += sub.nodes
        report.fault_count += sub.fault_count - len(sub.faults)
        for f in sub.faults:
            report.add(f.index, f.problem)
        tops.extend(span_tops)
        top_bad |= span_bad
        recomputed.update(span_rec)
    return tops, top_bad, recomputed


def verify_ledger(
    store: Store, progress: Progress | None = None, pinned: Pin | None = None
) -> VerifyReport:
    """Re-derive the whole stored log; the report lists faults by first bad index.

    With ``pinned`` every checkpoint must be signed by that key, and the stored key and
    origin must be the pinned ones (``report.key_problem`` says why not).
    """
    with collector.paused():
        return _verify(store, progress, pinned)


def _verify(store: Store, progress: Progress | None, pinned: Pin | None) -> VerifyReport:
    report = VerifyReport(pinned=pinned)
    started = time.perf_counter()
    with store.read() as conn:
        meta = {str(k): str(v) for k, v in rows(conn, "SELECT key, value FROM ledger_meta")}
        top = rows(conn, "SELECT min(idx), max(idx) FROM ledger_entries")[0]
        size = 0 if top[1] is None else int(top[1]) + 1
        if top[0] is not None and int(top[0]) < 0:
            report.add(0, "an entry has a negative index")
        report.size = size
        cps = [
            (int(s), bytes(r), str(n))
            for s, r, n in rows(
                conn, "SELECT size, root, note FROM ledger_checkpoints ORDER BY size"
            )
        ]
    needed = {ref for s, _, _ in cps if 0 < s <= size for ref in merkle.perfect_subtrees(0, s)}
    tops, top_bad, recomputed = _verify_spans(store, report, needed, size, progress)
    with store.read() as conn:
        checker = _Checker(conn, report, needed)
        checker.recomputed = recomputed
        if len(tops) >= 2:
            top_level = _CHUNK_LEVEL + 1
            hashes = _parents(tops)
            bad = checker.level(top_level, 0, hashes, top_bad)
            checker.climb(top_level, 0, hashes, bad, 64)
        _check_extra_nodes(conn, report, size)
        _check_checkpoints(report, cps, meta, size, checker.recomputed)
    report.checkpoints = len(cps)
    report.seconds = time.perf_counter() - started
    return report


def _check_extra_nodes(conn: Connection, report: VerifyReport, size: int) -> None:
    """Every stored node must lie above the entries; anything else was added behind our back."""
    p = placeholder(conn)
    for level in range(1, 64):
        found = rows(
            conn,
            f"SELECT min(idx) FROM ledger_nodes WHERE level = {p} AND idx >= {p}",
            (level, size >> level),
        )
        if found[0][0] is not None:
            ix = int(found[0][0])
            report.add(max(ix << level, size), f"tree node ({level}, {ix}) has no entries under it")
    odd = rows(conn, "SELECT level, idx FROM ledger_nodes WHERE level < 1 OR level > 63 OR idx < 0")
    if odd:
        report.add(0, f"tree node ({odd[0][0]}, {odd[0][1]}) is not a valid position")


def _check_checkpoints(
    report: VerifyReport,
    cps: list[tuple[int, bytes, str]],
    meta: dict[str, str],
    size: int,
    recomputed: dict[NodeRef, bytes],
) -> None:
    origin, vkey = meta.get("origin"), meta.get("verifier_key")
    pin = report.pinned
    if pin is not None:
        report.key_problem = key_problem(vkey, origin, pin)
    if origin is None or vkey is None:
        report.add(0, "the ledger's origin or verifier key is not recorded")
        return
    try:
        verifier = pin.verifier if pin is not None else Verifier.from_vkey(vkey)
    except CarewallError:
        report.add(0, "the verifier key recorded in the database is malformed")
        return
    for cp_size, cp_root, note in cps:
        where = max(0, min(cp_size, size + 1) - 1)
        label = f"checkpoint for size {cp_size}"
        try:
            cp = open_checkpoint(note, [verifier])
        except CarewallError as e:
            report.add(where, f"{label}: {e.message}")
            continue
        if cp.origin != origin or cp.size != cp_size or bytes(cp.root) != cp_root:
            report.add(where, f"{label}: the signed note does not match the stored size or root")
        elif cp_size > size:
            report.add(size, f"{label}: the log has only {size} entries")
        else:
            root = merkle.root_at(cp_size, lambda refs: {r: recomputed[r] for r in refs})
            if root != cp_root:
                report.add(where, f"{label}: root differs from the root of the entries")
