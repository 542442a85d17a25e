"""Tamper with a stored log behind carewall's back; `ledger verify` must exit 1 naming where."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from carewall.cli import main
from carewall.ledger import Ledger
from carewall.storage.db import open_store

SIZE = 300


def raw(i: int) -> bytes:
    return b'{"kind":"decision","n":%d,"v":1}' % i


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "log.db"
    store = open_store(str(path))
    lg = Ledger.create(store, "tamper.test/log", tmp_path / "log.key")
    for start in range(0, SIZE, 50):
        lg.append_raw([raw(i) for i in range(start, start + 50)])
        lg.publish()
    store.dispose()
    return str(path)


def sql(db: str, *statements: tuple[str, tuple[object, ...]]) -> None:
    con = sqlite3.connect(db)
    with con:
        for text, params in statements:
            assert con.execute(text, params).rowcount >= 1
    con.close()


def verify(db: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["ledger", "verify", "--db", db])
    return result.exit_code, result.stdout + result.stderr


def test_untouched_log_verifies(db: str) -> None:
    assert verify(db)[0] == 0


def _shift_and_insert(db: str) -> None:
    con = sqlite3.connect(db)
    with con:
        rows = con.execute("SELECT idx, data, hash FROM ledger_entries WHERE idx >= 100").fetchall()
        con.execute("DELETE FROM ledger_entries WHERE idx >= 100")
        con.executemany(
            "INSERT INTO ledger_entries VALUES (?, ?, ?)", [(i + 1, d, h) for i, d, h in rows]
        )
        # The forger even stores a correct leaf hash for the inserted entry.
        forged = b'{"kind":"release","v":1}'
        con.execute(
            "INSERT INTO ledger_entries VALUES (100, ?, ?)",
            (forged, hashlib.sha256(b"\x00" + forged).digest()),
        )
    con.close()


TAMPERS: dict[str, tuple[Callable[[str], None], int]] = {
    "change an entry": (
        lambda db: sql(db, ("UPDATE ledger_entries SET data = ? WHERE idx = 137", (raw(999),))),
        137,
    ),
    "delete an entry": (
        lambda db: sql(db, ("DELETE FROM ledger_entries WHERE idx = 137", ())),
        137,
    ),
    "delete the last entry": (
        lambda db: sql(db, ("DELETE FROM ledger_entries WHERE idx = ?", (SIZE - 1,))),
        SIZE - 1,
    ),
    "swap two entries": (
        lambda db: sql(
            db,
            ("UPDATE ledger_entries SET data = ? WHERE idx = 41", (raw(40),)),
            ("UPDATE ledger_entries SET data = ? WHERE idx = 40", (raw(41),)),
        ),
        40,
    ),
    "insert an entry": (_shift_and_insert, 100),
    "change a stored node hash": (
        lambda db: sql(
            db, ("UPDATE ledger_nodes SET hash = ? WHERE level = 3 AND idx = 5", (b"\x07" * 32,))
        ),
        40,
    ),
    "change a stored leaf hash": (
        lambda db: sql(db, ("UPDATE ledger_entries SET hash = ? WHERE idx = 9", (b"\x07" * 32,))),
        9,
    ),
    "delete a stored node": (
        lambda db: sql(db, ("DELETE FROM ledger_nodes WHERE level = 1 AND idx = 70", ())),
        140,
    ),
    "add a stray node": (
        lambda db: sql(db, ("INSERT INTO ledger_nodes VALUES (2, 500, ?)", (b"\x01" * 32,))),
        2000,
    ),
    "change a checkpoint's signature": (
        lambda db: sql(
            db,
            (
                "UPDATE ledger_checkpoints SET note = replace(note, '\n150\n', '\n151\n') "
                "WHERE size = 150",
                (),
            ),
        ),
        149,
    ),
    "change a checkpoint's stored root": (
        lambda db: sql(
            db, ("UPDATE ledger_checkpoints SET root = ? WHERE size = 200", (b"\x02" * 32,))
        ),
        199,
    ),
}


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_tampering_is_caught_at_the_first_bad_index(db: str, name: str) -> None:
    tamper, index = TAMPERS[name]
    tamper(db)
    code, out = verify(db)
    assert code == 1, out
    assert f"first bad index {index}:" in out
    assert "Traceback" not in out
