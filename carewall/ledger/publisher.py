"""Publish: sign a C2SP checkpoint for the current tree and keep it.

Checkpoints are C2SP tlog-checkpoint bodies in a C2SP signed note whose key name is the
log's origin (https://c2sp.org/tlog-checkpoint). Every published checkpoint is kept, and
sizes only grow: publishing when the log has not grown returns the latest note unchanged.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from carewall.ledger import merkle
from carewall.ledger.checkpoint import Checkpoint, sign_checkpoint
from carewall.ledger.note import Signer
from carewall.ledger.proofs import current_size, fetch_nodes
from carewall.ledger.sequencer import lock
from carewall.storage.db import placeholder

__all__ = ["latest", "publish"]


def latest(conn: Connection) -> tuple[int, str] | None:
    """The newest stored checkpoint as ``(size, note)``, or None before the first."""
    row = conn.exec_driver_sql(
        "SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1"
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


def publish(conn: Connection, signer: Signer, origin: str) -> str:
    """Sign and store a checkpoint for the current size if the log grew; return the newest."""
    lock(conn)
    size = current_size(conn)
    last = latest(conn)
    if last is not None and last[0] >= size:
        return last[1]
    root = merkle.root_at(size, lambda refs: fetch_nodes(conn, refs))
    note = sign_checkpoint(Checkpoint(origin, size, root, ()), signer)
    p = placeholder(conn)
    conn.exec_driver_sql(
        f"INSERT INTO ledger_checkpoints (size, root, note) VALUES ({p}, {p}, {p})",
        (size, bytes(root), note),
    )
    return note
