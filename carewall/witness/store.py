"""Durable witness state, in the same database as the rest of an instance.

Being a witness: ``witness_logs`` holds, per log origin, the latest checkpoint this witness
cosigned (size, root, the cosigned note). :func:`advance` is a compare-and-swap on the stored
size and root inside the caller's write transaction, so two concurrent add-checkpoint
requests can never both move the record (C2SP tlog-witness: "checking the old size against
the latest checkpoint and persisting the new checkpoint must be performed atomically").

Asking witnesses: ``witness_cosignatures`` keeps each cosignature line a witness returned,
by checkpoint size; ``witness_status`` keeps, per witness, the size it last said it holds,
the last error and when the publisher may try again.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = [
    "WitnessStatus",
    "advance",
    "cosignatures",
    "latest",
    "latest_note",
    "metadata",
    "save_cosignature",
    "set_status",
    "statuses",
]

metadata = sa.MetaData()
_SIZE = sa.BigInteger()

logs = sa.Table(
    "witness_logs",
    metadata,
    sa.Column("origin", sa.String(255), primary_key=True),
    sa.Column("size", _SIZE, nullable=False),
    sa.Column("root", sa.LargeBinary(32), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
)

cosigs = sa.Table(
    "witness_cosignatures",
    metadata,
    sa.Column("size", _SIZE, primary_key=True, autoincrement=False),
    sa.Column("witness", sa.String(255), primary_key=True),
    sa.Column("line", sa.Text, nullable=False),
    sa.Column("cosigned_at", _SIZE, nullable=False),
)

status = sa.Table(
    "witness_status",
    metadata,
    sa.Column("witness", sa.String(255), primary_key=True),
    sa.Column("size", _SIZE, nullable=True),
    sa.Column("cosigned_size", _SIZE, nullable=True),
    sa.Column("error", sa.String(200), nullable=True),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("retry_at", sa.Float, nullable=False, server_default="0"),
)


# ----- being a witness ----------------------------------------------------------------


def latest(conn: Connection, origin: str) -> tuple[int, bytes] | None:
    """The (size, root) this witness last cosigned for ``origin``, or None."""
    row = conn.execute(sa.select(logs.c.size, logs.c.root).where(logs.c.origin == origin)).first()
    return None if row is None else (int(row[0]), bytes(row[1]))


def latest_note(conn: Connection, origin: str) -> str | None:
    """The cosigned note this witness last returned for ``origin`` (monitoring)."""
    row = conn.execute(sa.select(logs.c.note).where(logs.c.origin == origin)).first()
    return None if row is None else str(row[0])


def advance(
    conn: Connection,
    origin: str,
    old: tuple[int, bytes] | None,
    size: int,
    root: bytes,
    note: str,
) -> bool:
    """Move ``origin``'s record from ``old`` to (size, root); False if it moved meanwhile.

    MUST run inside the transaction that commits before the cosignature is returned.
    """
    if old is None:
        result = conn.execute(
            sa.text(
                "INSERT INTO witness_logs (origin, size, root, note) "
                "VALUES (:o, :s, :r, :n) ON CONFLICT (origin) DO NOTHING"
            ),
            {"o": origin, "s": size, "r": root, "n": note},
        )
    else:
        result = conn.execute(
            logs.update()
            .where(logs.c.origin == origin, logs.c.size == old[0], logs.c.root == old[1])
            .values(size=size, root=root, note=note)
        )
    return result.rowcount == 1


# ----- asking witnesses ---------------------------------------------------------------


@dataclass(frozen=True)
class WitnessStatus:
    witness: str
    size: int | None  # what the witness last said it holds
    cosigned_size: int | None  # the largest of our checkpoints it cosigned
    error: str | None
    failures: int
    retry_at: float


def save_cosignature(conn: Connection, size: int, witness: str, line: str, at: int) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO witness_cosignatures (size, witness, line, cosigned_at) "
            "VALUES (:s, :w, :l, :t) ON CONFLICT (size, witness) DO NOTHING"
        ),
        {"s": size, "w": witness, "l": line, "t": at},
    )


def cosignatures(conn: Connection, size: int) -> list[str]:
    """The cosignature lines collected for the checkpoint of ``size``, by witness name."""
    rows = conn.execute(
        sa.select(cosigs.c.line).where(cosigs.c.size == size).order_by(cosigs.c.witness)
    )
    return [str(r[0]) for r in rows]


def set_status(
    conn: Connection,
    witness: str,
    *,
    size: int | None,
    cosigned_size: int | None,
    error: str | None,
    failures: int,
    retry_at: float,
) -> None:
    values = {
        "size": size,
        "cosigned_size": cosigned_size,
        "error": None if error is None else error[:200],
        "failures": failures,
        "retry_at": retry_at,
    }
    done = conn.execute(status.update().where(status.c.witness == witness).values(**values))
    if done.rowcount == 0:
        conn.execute(status.insert().values(witness=witness, **values))


def statuses(conn: Connection) -> dict[str, WitnessStatus]:
    rows = conn.execute(sa.select(status))
    return {
        str(r.witness): WitnessStatus(
            str(r.witness),
            None if r.size is None else int(r.size),
            None if r.cosigned_size is None else int(r.cosigned_size),
            None if r.error is None else str(r.error),
            int(r.failures),
            float(r.retry_at),
        )
        for r in rows
    }
