"""The ledger's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

``ledger_entries`` holds each entry's canonical bytes and its leaf hash (the level-0 perfect
subtree) by index; ``ledger_nodes`` holds the hash of every perfect subtree above the leaves,
keyed ``(level, idx)``. An inclusion or consistency proof is one batched lookup and a C2SP hash
tile is one range scan at level ``8·L``. Leaf hashes sit beside their entries rather than in
``ledger_nodes`` because that saves a third of the rows written per append and read per fsck
(SQLite's per-row cost dominates both). Entries and nodes are written in the same transaction,
so they never disagree after a crash. ``ledger_checkpoints`` keeps every signed checkpoint;
sizes only grow.
``ledger_meta`` records the origin and the verifier key, so read-only opens need no key file.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["checkpoints", "entries", "meta", "metadata", "nodes"]

metadata = sa.MetaData()

# On SQLite an INTEGER PRIMARY KEY is the rowid itself: no second index for the entries.
Index = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

meta = sa.Table(
    "ledger_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("idx", Index, primary_key=True, autoincrement=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
)

nodes = sa.Table(
    "ledger_nodes",
    metadata,
    sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
    sqlite_with_rowid=False,
)

checkpoints = sa.Table(
    "ledger_checkpoints",
    metadata,
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root", sa.LargeBinary(32), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
)
