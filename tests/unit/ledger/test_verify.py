"""`ledger verify`'s own hashing and upkeep (tampering: tests/integration/test_ledger_tamper.py)."""

from __future__ import annotations

import gc
import hashlib
import json
import subprocess
import sys
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


def _tampered_log(tmp_path: Path) -> str:
    """A 300-entry log with one entry and one stored node changed behind its back."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    store = open_store(url)
    try:
        lg = Ledger.create(store, "verify.test/log", tmp_path / "log.key")
        lg.append_raw([b'{"kind":"policy","n":%d,"v":1}' % i for i in range(300)])
        lg.publish()
        with store.write() as conn:
            conn.exec_driver_sql(
                "UPDATE ledger_entries SET data = ? WHERE idx = 37", (b'{"kind":"x","v":1}',)
            )
            conn.exec_driver_sql(
                "UPDATE ledger_nodes SET hash = ? WHERE level = 2 AND idx = 50", (b"\x07" * 32,)
            )
    finally:
        store.dispose()
    return url


def test_forked_workers_report_what_one_process_reports(tmp_path: Path) -> None:
    """Run alone (tests/integration/fork_probe.py): only a process without threads forks."""
    probe = Path(__file__).parents[2] / "integration" / "fork_probe.py"
    url = _tampered_log(tmp_path)
    done = subprocess.run(
        [sys.executable, str(probe), "verify", url], capture_output=True, check=False, timeout=600
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    got = json.loads(done.stdout)
    if got["workers"] == 1:
        pytest.skip("one core: nothing to split")
    assert got["start"] == "fork"
    assert [f[0] for f in got["alone"]][:2] == [37, 200]
    assert got["forked"] == got["alone"] == got["again"]
    assert got["counts"][0] == got["counts"][1]


def test_no_fork_beside_another_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread may hold a lock a forked child would inherit held: spawn, or stay alone."""
    import threading

    monkeypatch.setattr(v, "_FORK_MIN", 1)
    store = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert v._workers(store, 1000) == (1, None)  # under _PARALLEL_MIN: in this process
        _, ctx = v._workers(store, v._PARALLEL_MIN)
        assert ctx is None or ctx.get_start_method() == "spawn"
    finally:
        release.set()
        other.join()
        store.dispose()
