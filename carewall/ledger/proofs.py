"""Serve: read-only lookups over the stored log (size, nodes, proofs, tiles, entries).

Every function takes a connection from ``store.read()`` (or the writer's, inside a write) and
never takes the writer's lock. A proof is one batched node lookup; a hash tile is one range
scan at tree level ``8·L`` (C2SP tlog-tiles: https://c2sp.org/tlog-tiles).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from carewall.errors import LedgerError
from carewall.ledger import merkle
from carewall.ledger.merkle import NodeRef
from carewall.ledger.tiles import encode_entry_bundle
from carewall.storage.db import driver_rows as rows
from carewall.storage.db import placeholder
from carewall.types import RootHash

__all__ = [
    "TILE_WIDTH",
    "consistency_proof",
    "current_size",
    "entries",
    "entry_bundle",
    "fetch_nodes",
    "fetch_with_size",
    "inclusion_proof",
    "root",
    "tile",
]

TILE_WIDTH = 256
_TILE_HEIGHT = 8


def current_size(conn: Connection) -> int:
    """How many entries are committed (indices are gap-free from 0)."""
    top = rows(conn, "SELECT max(idx) FROM ledger_entries")[0][0]
    return 0 if top is None else int(top) + 1


def _nodes_sql(conn: Connection, refs: Sequence[NodeRef]) -> tuple[list[str], list[Any]]:
    if conn.dialect.name == "postgresql":
        # One fixed statement text whatever the refs, so psycopg prepares it once and the
        # planner does not re-plan a long OR chain (which costs more than running it).
        return [
            "SELECT 0, idx, hash FROM ledger_entries WHERE idx = ANY(%s::bigint[])",
            "SELECT n.level, n.idx, n.hash FROM ledger_nodes n "
            "JOIN unnest(%s::smallint[], %s::bigint[]) AS r(level, idx) "
            "ON n.level = r.level AND n.idx = r.idx",
        ], [
            [ix for lv, ix in refs if lv == 0],
            [lv for lv, _ in refs if lv != 0],
            [ix for lv, ix in refs if lv != 0],
        ]
    p = placeholder(conn)
    leaves = [ix for lv, ix in refs if lv == 0]
    inner = [ref for ref in refs if ref[0] != 0]
    parts: list[str] = []
    params: list[Any] = []
    if leaves:
        parts.append(
            f"SELECT 0, idx, hash FROM ledger_entries WHERE idx IN ({', '.join([p] * len(leaves))})"
        )
        params.extend(leaves)
    if inner:
        where = " OR ".join([f"(level = {p} AND idx = {p})"] * len(inner))
        parts.append(f"SELECT level, idx, hash FROM ledger_nodes WHERE {where}")
        params.extend(v for ref in inner for v in ref)
    return parts, params


def fetch_nodes(conn: Connection, refs: Sequence[NodeRef]) -> dict[NodeRef, bytes]:
    """Look up perfect-subtree hashes (level 0 = leaf hashes) in one query; absent if missing."""
    parts, params = _nodes_sql(conn, list(dict.fromkeys(refs)))
    if not parts:
        return {}
    found = rows(conn, " UNION ALL ".join(parts), params)
    return {(int(lv), int(ix)): bytes(h) for lv, ix, h in found}


def fetch_with_size(conn: Connection, refs: Sequence[NodeRef]) -> tuple[int, dict[NodeRef, bytes]]:
    """The current size and the hashes at ``refs``, in one round trip (the proof hot path)."""
    parts, params = _nodes_sql(conn, list(dict.fromkeys(refs)))
    sql = " UNION ALL ".join(["SELECT -1, max(idx), NULL FROM ledger_entries", *parts])
    size = 0
    got: dict[NodeRef, bytes] = {}
    for lv, ix, h in rows(conn, sql, params):
        if lv == -1:
            size = 0 if ix is None else int(ix) + 1
        else:
            got[(int(lv), int(ix))] = bytes(h)
    return size, got


def _check_size(size: int, current: int, what: str = "size") -> None:
    if size < 0:
        raise LedgerError(f"{what} must not be negative", field=what, fix="use 0 or more")
    if size > current:
        raise LedgerError(
            f"{what} {size} is larger than the log ({current} entries)",
            field=what,
            fix="ask for a size no larger than the latest checkpoint's",
        )


# Perfect-subtree hashes never change once stored (the log is append-only), so a reader may
# keep the upper levels, which every proof shares, and fetch only the rest. fsck never uses
# this cache: it always re-reads storage.
_CACHE_MIN_LEVEL = 8
_CACHE_MAX = 1 << 18

# A long-lived reader (the log server) bulk-loads the cached levels once it has served this
# many proofs, and again whenever the log has doubled since; a one-shot reader (a CLI proof)
# never pays for that.
_WARM_AFTER = 16


class NodeCache(dict[NodeRef, bytes]):
    """Upper-level node hashes kept by one :class:`~carewall.ledger.log.Ledger`."""

    __slots__ = ("uses", "warm_size")

    def __init__(self) -> None:
        super().__init__()
        self.uses = 0
        self.warm_size = -1  # the log size at the last bulk load; -1: never loaded


def _warm(conn: Connection, cache: NodeCache) -> None:
    """Load the cached levels in one range scan instead of one B-tree descent per node.

    A random proof touches about one node per level, and below the top few levels almost
    none is in the cache yet, so a cold cache costs a lookup per level for a long time.
    Only as many levels as fit in half the cache are loaded; later nodes come on demand.
    """
    size = current_size(conn)
    if size <= 2 * cache.warm_size:
        return  # the request was beyond the log, which has not doubled since the last load
    cache.warm_size = size
    level = _CACHE_MIN_LEVEL
    while level < 63 and (size >> level) > _CACHE_MAX // 4:
        level += 1
    p = placeholder(conn)
    found = rows(conn, f"SELECT level, idx, hash FROM ledger_nodes WHERE level >= {p}", (level,))
    for lv, ix, h in found:
        cache[(int(lv), int(ix))] = bytes(h)


def _prefetch(
    conn: Connection, size: int, refs: Sequence[NodeRef], cache: NodeCache | None = None
) -> merkle.NodeGetter:
    if cache is None:
        current, got = fetch_with_size(conn, refs)
    else:
        if len(cache) > _CACHE_MAX:
            cache.clear()
            cache.warm_size = -1
        cache.uses += 1
        if cache.uses >= _WARM_AFTER and size > 2 * cache.warm_size:
            _warm(conn, cache)
        # get(), not `in` then [], so a concurrent clear() in another thread cannot bite.
        known = {r: h for r in refs if (h := cache.get(r)) is not None}
        current, got = fetch_with_size(conn, [r for r in refs if r not in known])
        for ref, h in got.items():
            if ref[0] >= _CACHE_MIN_LEVEL:
                cache[ref] = h
        got.update(known)
    _check_size(size, current)

    def get(_refs: Sequence[NodeRef]) -> Mapping[NodeRef, bytes]:
        return got

    return get


def inclusion_proof(
    conn: Connection, index: int, size: int, cache: NodeCache | None = None
) -> list[bytes]:
    if not 0 <= index < size:
        raise LedgerError(
            f"index {index} is not in a tree of size {size}",
            field="index",
            fix="ask for an index in [0, size)",
        )
    get = _prefetch(conn, size, merkle.inclusion_proof_refs(index, size), cache)
    return list(merkle.inclusion_proof(index, size, get))


def consistency_proof(
    conn: Connection, m: int, n: int, cache: NodeCache | None = None
) -> list[bytes]:
    if not 0 < m <= n:
        raise LedgerError(
            f"no consistency proof from size {m} to size {n}",
            field="from",
            fix="ask for 1 <= from <= size",
        )
    get = _prefetch(conn, n, merkle.consistency_proof_refs(m, n), cache)
    return list(merkle.consistency_proof(m, n, get))


def root(conn: Connection, size: int) -> RootHash:
    if size < 0:
        raise LedgerError("size must not be negative", field="size", fix="use 0 or more")
    return merkle.root_at(size, _prefetch(conn, size, merkle.perfect_subtrees(0, size)))


def _tile_span(n: int, width: int | None, available: int) -> tuple[int, int]:
    if n < 0:
        raise LedgerError("tile index must not be negative", field="n")
    if width is not None and not 0 < width < TILE_WIDTH:
        raise LedgerError("a partial tile is 1 to 255 wide", field="width")
    w = TILE_WIDTH if width is None else width
    start = n * TILE_WIDTH
    if start + w > available:
        raise LedgerError(
            "that tile is not available at the current tree size",
            field="width",
            fix="ask for a tile the latest checkpoint covers (a narrower partial tile)",
        )
    return start, w


def tile(conn: Connection, level: int, n: int, width: int | None) -> bytes:
    """The C2SP hash tile ``tile/<level>/<n>[.p/<width>]``: 32-byte hashes concatenated."""
    node_level = level * _TILE_HEIGHT
    if not 0 <= node_level < 64:
        raise LedgerError("tile level must be 0 to 7", field="level")
    start, w = _tile_span(n, width, current_size(conn) >> node_level)
    p = placeholder(conn)
    if node_level == 0:
        sql = f"SELECT hash FROM ledger_entries WHERE idx >= {p} AND idx < {p} ORDER BY idx"
        found = rows(conn, sql, (start, start + w))
    else:
        sql = (
            f"SELECT hash FROM ledger_nodes WHERE level = {p} AND idx >= {p} AND idx < {p} "
            "ORDER BY idx"
        )
        found = rows(conn, sql, (node_level, start, start + w))
    if len(found) != w:
        raise LedgerError(
            "stored tree nodes are missing for that tile",
            fix="the node store is incomplete; run `carewall ledger verify`",
        )
    return b"".join(bytes(r[0]) for r in found)


def entries(conn: Connection, start: int, end: int) -> list[bytes]:
    """Entries ``[start, end)`` as stored (canonical JSON bytes)."""
    size = current_size(conn)
    if not 0 <= start <= end:
        raise LedgerError("need 0 <= start <= end", field="start", fix="check the range")
    _check_size(end, size, "end")
    p = placeholder(conn)
    sql = f"SELECT data FROM ledger_entries WHERE idx >= {p} AND idx < {p} ORDER BY idx"
    return [bytes(r[0]) for r in rows(conn, sql, (start, end))]


def entry_bundle(conn: Connection, n: int, width: int | None) -> bytes:
    """The C2SP entry bundle ``tile/entries/<n>[.p/<width>]``."""
    start, w = _tile_span(n, width, current_size(conn))
    return encode_entry_bundle(entries(conn, start, start + w))
