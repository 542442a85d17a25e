"""Sequence and integrate: assign indices and extend the tree in one transaction.

The caller's transaction MUST be a writer transaction (``store.write()``): on SQLite it began
with ``BEGIN IMMEDIATE``, so it already holds the database's single writer lock; on
PostgreSQL we take a transaction-scoped advisory lock here, so concurrent appenders queue
and no index is assigned twice. Entries and every perfect-subtree hash they complete are
inserted together, so a crash can never leave stored hashes that disagree with entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection

from carewall.errors import LedgerError
from carewall.ledger.merkle import CompactRange, hash_leaf
from carewall.ledger.proofs import current_size, fetch_nodes, placeholder

__all__ = ["LOCK_KEY", "lock", "sequence"]

# ASCII "carewall" as a signed 64-bit key for pg_advisory_xact_lock.
LOCK_KEY = 0x6361726577616C6C


def lock(conn: Connection) -> None:
    """Serialise ledger writers until this transaction ends (a no-op on SQLite, see above)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))


def sequence(conn: Connection, datas: Sequence[bytes]) -> list[int]:
    """Append already-canonical entries; return their indices once they are in the tree.

    Durability is the caller's commit: the indices MUST NOT be handed out before it returns.
    """
    if not datas:
        return []
    lock(conn)
    size = current_size(conn)
    refs = CompactRange.frontier_refs(size)
    got = fetch_nodes(conn, refs)
    if len(got) != len(refs):
        raise LedgerError(
            "the stored tree frontier is incomplete; refusing to append",
            fix="run `carewall ledger verify` and restore the database from a backup",
        )
    cr = CompactRange(size, [got[r] for r in refs])
    leaves = [hash_leaf(d) for d in datas]
    node_rows = [(lv, ix, h) for (lv, ix), h in cr.extend(leaves) if lv]
    entry_rows = list(zip(range(size, size + len(datas)), datas, leaves, strict=True))
    if conn.dialect.name == "postgresql":
        _copy(conn, entry_rows, node_rows)
    else:
        _insert(conn, "ledger_entries (idx, data, hash)", entry_rows)
        _insert(conn, "ledger_nodes (level, idx, hash)", node_rows)
    return list(range(size, size + len(datas)))


_ROWS_PER_STATEMENT = 100


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
        batches = [tuple(v for row in rows[i : i + k] for v in row) for i in range(0, whole, k)]
        conn.exec_driver_sql(sql, batches)
    if whole < len(rows):
        rest = rows[whole:]
        sql = f"INSERT INTO {target} VALUES " + ", ".join([one] * len(rest))
        conn.exec_driver_sql(sql, tuple(v for row in rest for v in row))


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
