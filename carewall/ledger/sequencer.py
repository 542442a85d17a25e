"""Sequence and integrate: assign indices and extend the tree in one transaction.

The caller's transaction MUST be a writer transaction (``store.write()``): on SQLite it began
with ``BEGIN IMMEDIATE``, so it already holds the database's single writer lock; on
PostgreSQL we take a transaction-scoped advisory lock here, so concurrent appenders queue
and no index is assigned twice. Entries and every perfect-subtree hash they complete are
inserted together, so a crash can never leave stored hashes that disagree with entries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from sqlalchemy.engine import Connection

from carewall.errors import LedgerError
from carewall.ledger.merkle import CompactRange
from carewall.ledger.proofs import current_size, fetch_nodes
from carewall.storage.db import driver_errors, driver_rows, placeholder

__all__ = ["LOCK_KEY", "Head", "head", "lock", "sequence"]

# ASCII "carewall" as a signed 64-bit key for pg_advisory_xact_lock.
LOCK_KEY = 0x6361726577616C6C


def lock(conn: Connection) -> None:
    """Serialise ledger writers until this transaction ends (a no-op on SQLite, see above)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))


@dataclass
class Head:
    """The tree's size and frontier, read under the ledger's lock in one transaction.

    Good for one :func:`sequence` in the same transaction, with no other append between
    (it is spent by that call). Were it used after another append all the same, the
    indices it hands out would collide with stored ones, and the primary keys refuse the
    whole transaction: never a forked tree.
    """

    size: int
    frontier: list[bytes]
    spent: bool = False


def head(
    conn: Connection, reads: Sequence[tuple[str, Sequence[Any]]] = ()
) -> tuple[Head, list[list[tuple[Any, ...]]]]:
    """Take the ledger's lock, read the head, and run ``reads`` (driver SQL, parameters)
    under the lock; return the head and each read's rows.

    On PostgreSQL the lock, the reads and the head go in one round trip (a psycopg
    pipeline): each statement still runs after the one before it has finished, with its own
    snapshot, so everything read sees every commit made before the lock was granted.
    """
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        with driver_errors(conn, _PG_HEAD_SQL):
            with raw.pipeline():
                raw.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                cursors = [raw.execute(sql, tuple(params)) for sql, params in reads]
                top = raw.execute(_PG_HEAD_SQL)
            got_rows = [[tuple(r) for r in c.fetchall()] for c in cursors]
            fetched = top.fetchall()
        size, got = _pg_parse_head(fetched)
    else:
        # The driver's own cursor (as current_size and fetch_nodes use): SQLAlchemy's result
        # layer costs several times the read itself, and this runs once per write.
        got_rows = [driver_rows(conn, sql, params) for sql, params in reads]
        size = current_size(conn)
        got = fetch_nodes(conn, CompactRange.frontier_refs(size))
    refs = CompactRange.frontier_refs(size)
    if any(r not in got for r in refs):
        raise LedgerError(
            "the stored tree frontier is incomplete; refusing to append",
            fix="run `carewall ledger verify` and restore the database from a backup",
        )
    return Head(size, CompactRange(size, [got[r] for r in refs]).frontier()), got_rows


def sequence(conn: Connection, datas: Sequence[bytes], at: Head | None = None) -> list[int]:
    """Append already-canonical entries; return their indices once they are in the tree.

    ``at``: the head this transaction read with :func:`head` (so no second lock and read);
    without it, both are taken here. Durability is the caller's commit: the indices MUST
    NOT be handed out before it returns.
    """
    if not datas:
        return []
    if at is None:
        at, _ = head(conn)
    elif at.spent:
        raise LedgerError("a ledger head can be appended at only once")
    at.spent = True
    size = at.size
    sha, leaf = hashlib.sha256, b"\x00"
    leaves = [sha(leaf + d).digest() for d in datas]
    node_rows = _completed_nodes(size, at.frontier, leaves)
    entry_rows = list(zip(range(size, size + len(datas)), datas, leaves, strict=True))
    if conn.dialect.name == "postgresql":
        if len(entry_rows) + len(node_rows) <= _PG_SMALL or _in_pipeline(conn):
            _pg_insert_small(conn, entry_rows, node_rows)
        else:
            _copy(conn, entry_rows, node_rows)
    else:
        _insert(conn, "ledger_entries (idx, data, hash)", entry_rows)
        _insert(conn, "ledger_nodes (level, idx, hash)", node_rows)
    return list(range(size, size + len(datas)))


def _completed_nodes(
    size: int, frontier: Sequence[bytes], leaves: Sequence[bytes]
) -> list[tuple[int, int, bytes]]:
    """Every perfect subtree (level >= 1, index, hash) that ``leaves`` complete when appended
    to a tree of ``size`` leaves whose frontier is ``frontier`` (largest subtree first).

    Level by level, as RFC 9162 hashes them: at each level the run of new nodes is paired
    off, its first one with the frontier's node at that level when it is a right child.
    One list comprehension per level instead of a loop per leaf: Python's overhead per
    entry is most of an append's CPU time.
    """
    # The frontier holds one perfect subtree per set bit of the size, largest first.
    bits = [level for level in range(size.bit_length() - 1, -1, -1) if size >> level & 1]
    old = dict(zip(bits, frontier, strict=True))
    sha, node = hashlib.sha256, b"\x01"
    rows: list[tuple[int, int, bytes]] = []
    level, first, run = 0, size, list(leaves)
    while True:
        if first & 1:  # the run starts with a right child: its sibling is the frontier's
            run.insert(0, old[level])
            first -= 1
        if len(run) < 2:
            return rows
        it = iter(run)
        run = [sha(node + left + right).digest() for left, right in zip(it, it, strict=False)]
        level += 1
        first >>= 1
        rows.extend(zip([level] * len(run), range(first, first + len(run)), run, strict=True))


_ROWS_PER_STATEMENT = 1000


def _insert(conn: Connection, target: str, rows: Sequence[tuple[Any, ...]]) -> None:
    # Multi-row VALUES: SQLite's per-statement cost, not per-row work, dominates executemany.
    if not rows:
        return
    p = placeholder(conn)
    one = "(" + ", ".join([p] * len(rows[0])) + ")"
    k = _ROWS_PER_STATEMENT
    whole = len(rows) - len(rows) % k
    if whole:
        sql = f"INSERT INTO {target} VALUES " + ", ".join([one] * k)
        flat = chain.from_iterable
        batches = [tuple(flat(rows[i : i + k])) for i in range(0, whole, k)]
        conn.exec_driver_sql(sql, batches)
    if whole < len(rows):
        rest = rows[whole:]
        sql = f"INSERT INTO {target} VALUES " + ", ".join([one] * len(rest))
        conn.exec_driver_sql(sql, tuple(chain.from_iterable(rest)))


def _copy(
    conn: Connection,
    entry_rows: Sequence[tuple[int, bytes, bytes]],
    node_rows: Sequence[tuple[int, int, bytes]],
) -> None:
    # COPY is an order of magnitude faster than executemany on PostgreSQL, and runs inside
    # the same transaction as the lock and the size read.
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur:
        with cur.copy("COPY ledger_entries (idx, data, hash) FROM STDIN") as cp:
            for row in entry_rows:
                cp.write_row(row)
        with cur.copy("COPY ledger_nodes (level, idx, hash) FROM STDIN") as cp:
            for node in node_rows:
                cp.write_row(node)


# The newest entry (its index gives the size) and the frontier's nodes above the leaves, in
# one round trip: node (l, (size >> l) - 1) for each set bit l >= 1 of the size, each one
# primary-key probe (a probe per level up to 62 with ORDER BY … LIMIT 1 cost PostgreSQL a
# third more per append). The caller checks that every frontier node is there.
_PG_HEAD_SQL = (
    "WITH s AS (SELECT coalesce(max(idx) + 1, 0) AS size FROM ledger_entries) "
    "SELECT 0, e.idx, e.hash FROM s JOIN ledger_entries e ON e.idx = s.size - 1 "
    "UNION ALL "
    "SELECT n.level, n.idx, n.hash FROM s CROSS JOIN generate_series(1, 62) AS l(level) "
    "JOIN ledger_nodes n ON n.level = l.level AND n.idx = (s.size >> l.level) - 1 "
    "WHERE (s.size >> l.level) & 1 = 1"
)


def _pg_parse_head(rows: Sequence[Sequence[Any]]) -> tuple[int, dict[tuple[int, int], bytes]]:
    size = 0
    got: dict[tuple[int, int], bytes] = {}
    for level, idx, h in rows:
        if level == 0:
            size = int(idx) + 1
        got[(int(level), int(idx))] = bytes(h)
    return size, got


def _in_pipeline(conn: Connection) -> bool:
    """Whether the caller runs this transaction's statements as a psycopg pipeline."""
    raw = conn.connection.driver_connection
    return raw is not None and raw.pgconn.pipeline_status != 0


# Below this many rows, one INSERT statement (one round trip, under the writers' lock) beats
# two COPYs (two round trips each); the service appends two to four entries per transition.
_PG_SMALL = 64


def _pg_insert_small(
    conn: Connection,
    entry_rows: Sequence[tuple[int, bytes, bytes]],
    node_rows: Sequence[tuple[int, int, bytes]],
) -> None:
    entries_sql = "INSERT INTO ledger_entries (idx, data, hash) VALUES " + ", ".join(
        ["(%s, %s, %s)"] * len(entry_rows)
    )
    params = list(chain.from_iterable(entry_rows))
    if node_rows:
        nodes_sql = "INSERT INTO ledger_nodes (level, idx, hash) VALUES " + ", ".join(
            ["(%s, %s, %s)"] * len(node_rows)
        )
        sql = f"WITH new_entries AS ({entries_sql}) {nodes_sql}"
        params.extend(chain.from_iterable(node_rows))
    else:
        sql = entries_sql
    conn.exec_driver_sql(sql, tuple(params))
