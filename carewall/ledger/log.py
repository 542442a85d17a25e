"""The ledger facade: create or open a log over a :class:`Store`, append, publish, serve.

Writers are :mod:`sequencer` (sequence + integrate, one transaction) and :mod:`publisher`
(sign a checkpoint); everything else is a read in :mod:`proofs` over ``store.read()``.
``append`` MUST NOT return an index before its entry is durably committed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from carewall.entries import KINDS
from carewall.errors import ConflictError, InputError, LedgerError
from carewall.ledger import proofs, publisher, sequencer, tables
from carewall.ledger.canonical import canonical
from carewall.ledger.keys import create_key, load_key
from carewall.ledger.note import Signer
from carewall.storage import migrate
from carewall.storage.db import Store

__all__ = ["MAX_ENTRY_BYTES", "Ledger", "check_entry", "check_origin", "encode_entry"]

MAX_ENTRY_BYTES = 65535

_ORIGIN = "origin"
_VKEY = "verifier_key"


def check_origin(origin: str) -> str:
    """An origin is a signed-note key name: printable, no spaces and no ``+``."""
    if (
        not origin
        or len(origin) > 200
        or "+" in origin
        or any(c.isspace() or not c.isprintable() for c in origin)
    ):
        raise InputError(
            "the log origin must be a non-empty name without spaces or '+'",
            field="origin",
            fix="use a host-like name, e.g. carewall.example.gov.uk/log",
        )
    return origin


def check_entry(entry: object, where: str) -> Mapping[str, Any]:
    """Refuse anything but a §6 entry object: ``"v": 1`` and a known ``"kind"``."""
    if not isinstance(entry, Mapping):
        raise InputError("a ledger entry must be a JSON object", field=where)
    v = entry.get("v")
    if v != 1 or isinstance(v, bool):
        raise InputError('a ledger entry needs "v": 1', field=f"{where}.v")
    if entry.get("kind") not in KINDS:
        raise InputError(
            "unknown entry kind",
            field=f"{where}.kind",
            fix="use one of: " + ", ".join(KINDS),
        )
    return entry


def encode_entry(entry: object, where: str) -> bytes:
    """Check an entry and return its RFC 8785 canonical bytes."""
    checked = check_entry(entry, where)
    try:
        data = canonical(dict(checked))
    except InputError as e:
        raise InputError(e.message, field=f"{where}.{e.field}" if e.field else where) from e
    except (TypeError, ValueError, OverflowError) as e:
        raise InputError(
            "the entry cannot be written as canonical JSON",
            field=where,
            fix="use only strings, integers, booleans, null, lists and objects",
        ) from e
    if len(data) > MAX_ENTRY_BYTES:
        # A C2SP entry bundle prefixes each entry with a 16-bit length: a larger entry could
        # never be served, and every auditor would fail on the whole log from then on.
        raise InputError(
            f"the entry is {len(data)} bytes, over the log's limit of {MAX_ENTRY_BYTES}",
            field=where,
            fix="keep each entry small: commit to long lists (e.g. subjects) by a Merkle root",
        )
    return data


class Ledger:
    """One transparency log in one database."""

    def __init__(self, store: Store, origin: str, verifier_key: str, signer: Signer | None) -> None:
        self.store = store
        self.origin = origin
        self.verifier_key = verifier_key
        self._signer = signer
        self._node_cache = proofs.NodeCache()  # immutable upper-level hashes (see proofs)

    @classmethod
    def create(cls, store: Store, origin: str, key_path: Path) -> Ledger:
        """Create the schema (if needed), a new 0600 key file, and record the origin.

        Refuses (leaving everything as it was) if the database already holds a ledger or the
        key file already exists.
        """
        check_origin(origin)
        migrate.upgrade(store)
        if _read_meta(store):
            raise ConflictError(
                "this database already holds a ledger",
                field="--db",
                fix="open it with its key instead, or choose a new database",
            )
        signer = create_key(key_path, origin)
        try:
            with store.write() as conn:
                conn.execute(
                    tables.meta.insert(),
                    [{"key": _ORIGIN, "value": origin}, {"key": _VKEY, "value": signer.vkey()}],
                )
        except Exception:
            # Someone else created the ledger first: our fresh key signs nothing, drop it.
            key_path.unlink(missing_ok=True)
            if _read_meta(store):
                raise ConflictError("this database already holds a ledger", field="--db") from None
            raise
        return cls(store, origin, signer.vkey(), signer)

    @classmethod
    def open(cls, store: Store, key_path: Path | None = None) -> Ledger:
        """Open an existing ledger; without ``key_path`` it is read-only (proofs, serving)."""
        meta = _read_meta(store)
        if _ORIGIN not in meta or _VKEY not in meta:
            raise LedgerError(
                "this database holds no ledger",
                field="--db",
                fix="check --db, or create one with `carewall init` or `carewall ledger append`",
            )
        signer = None
        if key_path is not None:
            signer = load_key(key_path)
            if signer.vkey() != meta[_VKEY]:
                raise InputError(
                    "the key file does not belong to this ledger",
                    field="--key",
                    fix="pass the key file written when this ledger was created",
                )
        return cls(store, meta[_ORIGIN], meta[_VKEY], signer)

    @property
    def writable(self) -> bool:
        return self._signer is not None

    def derive_secret(self, label: bytes) -> bytes | None:
        """A 32-byte secret for another purpose, ``HMAC-SHA256(signing key, label)``.

        ``label`` names the purpose (domain separation: one label, one use), so the secret
        reveals nothing of the signing key and no two uses share a secret. None when the
        ledger was opened without its key (read-only).
        """
        if self._signer is None:
            return None
        return hmac.new(self._signer.skey().encode("ascii"), label, hashlib.sha256).digest()

    def size(self) -> int:
        with self.store.read() as conn:
            return proofs.current_size(conn)

    def append(self, entries: Sequence[Mapping[str, Any]]) -> list[int]:
        datas = [encode_entry(e, f"entries[{i}]") for i, e in enumerate(entries)]
        return self.append_raw(datas)

    def append_in(
        self,
        conn: Connection,
        entries: Sequence[Mapping[str, Any]],
        at: sequencer.Head | None = None,
    ) -> list[int]:
        """Append inside the caller's ``store.write()`` transaction (commits with it).

        ``at``: the head this transaction read with :meth:`head_in`, if it did.
        """
        if conn.engine is not self.store.writer:
            raise LedgerError("append_in needs a connection from store.write()")
        datas = [encode_entry(e, f"entries[{i}]") for i, e in enumerate(entries)]
        return sequencer.sequence(conn, datas, at)

    def encode(self, entries: Sequence[Mapping[str, Any]]) -> list[bytes]:
        """Check entries and encode them for :meth:`append_encoded_in` (no database work, so a
        writer can do it before taking the ledger's lock)."""
        datas = [encode_entry(e, f"entries[{i}]") for i, e in enumerate(entries)]
        _check_sizes(datas)
        return datas

    def append_encoded_in(
        self, conn: Connection, datas: Sequence[bytes], at: sequencer.Head | None = None
    ) -> list[int]:
        """:meth:`append_in` for entries already checked and encoded by :meth:`encode`."""
        if conn.engine is not self.store.writer:
            raise LedgerError("append_in needs a connection from store.write()")
        _check_sizes(datas)
        return sequencer.sequence(conn, datas, at)

    def head_in(
        self, conn: Connection, reads: Sequence[tuple[str, Sequence[Any]]] = ()
    ) -> tuple[sequencer.Head, list[list[tuple[Any, ...]]]]:
        """Take the ledger's lock in the caller's writer transaction and read the head, with
        ``reads`` run under the lock in the same round trip (see :func:`sequencer.head`).

        Nothing else can append until the transaction ends, so what ``reads`` return stays
        what the appended entries follow.
        """
        if conn.engine is not self.store.writer:
            raise LedgerError("head_in needs a connection from store.write()")
        return sequencer.head(conn, reads)

    def append_raw(self, datas: Sequence[bytes]) -> list[int]:
        """Append already-canonical entry bytes (benchmarks, tests); commits before returning."""
        _check_sizes(datas)
        if not datas:
            return []
        with self.store.write() as conn:
            return sequencer.sequence(conn, datas)

    def append_and_publish(self, datas: Sequence[bytes]) -> str:
        """Append already-canonical entry bytes and sign a checkpoint over them, atomically.

        One transaction, so one durable commit: when this returns, the entries are committed
        and covered by the signed checkpoint it returns; on any error neither is.
        """
        _check_sizes(datas)
        if self._signer is None:
            return self.publish()  # raises the read-only error
        with self.store.write() as conn:
            sequencer.sequence(conn, datas)
            return publisher.publish(conn, self._signer, self.origin)

    def publish(self) -> str:
        if self._signer is None:
            raise LedgerError(
                "the ledger was opened read-only and cannot sign checkpoints",
                fix="open it with its key file (--key or CAREWALL_KEY)",
            )
        with self.store.write() as conn:
            return publisher.publish(conn, self._signer, self.origin)

    def publish_in(self, conn: Connection) -> str:
        """Sign a checkpoint inside the caller's ``store.write()`` transaction.

        The checkpoint commits atomically with the entries it covers, so a writer pays one
        durable commit per transition instead of two, and every acknowledged entry is
        already covered by a signed checkpoint when the caller's commit returns.
        """
        if self._signer is None:
            return self.publish()  # raises the read-only error
        if conn.engine is not self.store.writer:
            raise LedgerError("publish_in needs a connection from store.write()")
        return publisher.publish(conn, self._signer, self.origin)

    def checkpoint(self) -> str:
        with self.store.read() as conn:
            last = publisher.latest(conn)
        if last is not None:
            return last[1]
        return self.publish()

    def checkpoints(self) -> list[tuple[int, str]]:
        with self.store.read() as conn:
            rows = conn.exec_driver_sql("SELECT size, note FROM ledger_checkpoints ORDER BY size")
            return [(int(s), str(n)) for s, n in rows]

    def entries(self, start: int, end: int) -> list[bytes]:
        with self.store.read() as conn:
            return proofs.entries(conn, start, end)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        with self.store.read() as conn:
            return proofs.inclusion_proof(conn, index, size, self._node_cache)

    def consistency_proof(self, m: int, n: int) -> list[bytes]:
        with self.store.read() as conn:
            return proofs.consistency_proof(conn, m, n, self._node_cache)

    def root(self, size: int) -> bytes:
        with self.store.read() as conn:
            return bytes(proofs.root(conn, size))

    def tile(self, level: int, n: int, width: int | None) -> bytes:
        with self.store.read() as conn:
            return proofs.tile(conn, level, n, width)

    def entry_bundle(self, n: int, width: int | None) -> bytes:
        with self.store.read() as conn:
            return proofs.entry_bundle(conn, n, width)


def _check_sizes(datas: Sequence[bytes]) -> None:
    if not datas or max(map(len, datas)) <= MAX_ENTRY_BYTES:
        return  # the common case, in C
    for i, d in enumerate(datas):
        if len(d) > MAX_ENTRY_BYTES:
            raise InputError(
                f"entry {i} is {len(d)} bytes, over the log's limit of {MAX_ENTRY_BYTES}",
                field=f"entries[{i}]",
                fix="keep each entry under 64 KiB",
            )


def _read_meta(store: Store) -> dict[str, str]:
    with store.read() as conn:
        if not sa.inspect(conn).has_table(tables.meta.name):
            return {}
        return {str(k): str(v) for k, v in conn.execute(sa.select(tables.meta))}
