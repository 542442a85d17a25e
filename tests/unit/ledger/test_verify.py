"""`ledger verify`'s own hashing and upkeep (tampering: tests/integration/test_ledger_tamper.py)."""

from __future__ import annotations

import gc
import hashlib
from pathlib import Path

import pytest

from carewall.ledger import Ledger, verify_ledger
from carewall.ledger import verify as v
from carewall.ledger.merkle import hash_leaf
from carewall.storage.db import open_store


def test_leaf_hashes_are_rfc_9162_leaf_hashes() -> None:
    datas = [b"", b"\x00", b'{"kind":"policy","v":1}', bytes(range(256)) * 300]
    expected = [hashlib.sha256(b"\x00" + d).digest() for d in datas]
    assert v._leaves(datas) == [hash_leaf(d) for d in datas] == expected
    assert v._leaves(iter(datas)) == expected  # any iterable, as rows come


def test_the_collector_is_paused_for_a_check_and_restored_after(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "log.db"))
    try:
        lg = Ledger.create(store, "verify.test/log", tmp_path / "log.key")
        lg.append_raw([b'{"kind":"policy","n":%d,"v":1}' % i for i in range(40)])
        lg.publish()
        seen: list[bool] = []

        def progress(done: int, total: int) -> None:
            seen.append(gc.isenabled())

        assert gc.isenabled()
        assert verify_ledger(store, progress).ok
        assert seen and not any(seen)  # off while checking
        assert gc.isenabled()  # on again after
        gc.disable()
        try:
            assert verify_ledger(store).ok
            assert not gc.isenabled()  # a caller that had it off keeps it off
        finally:
            gc.enable()

        def failing(done: int, total: int) -> None:
            raise RuntimeError("interrupted")

        with pytest.raises(RuntimeError):
            verify_ledger(store, failing)
        assert gc.isenabled()  # and on again after a failure
    finally:
        store.dispose()
