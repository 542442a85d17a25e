"""Group commit: submits that arrive during a commit share the next transaction.

First the mechanism alone (a fake writer that records its batches and can be held inside
a transaction), then the service: many threads submitting at once on SQLite and
PostgreSQL, every answer pointing at its own decision entry, one bad request failing alone.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from logaudit import assert_log_audits

from carewall.errors import CarewallError
from carewall.service import Service
from carewall.service.group_commit import GroupCommit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DOC = json.loads((EXAMPLES / "07-police-theft-suspect.json").read_text(encoding="utf-8"))
WAIT = 120.0  # seconds: generous, never a timing assertion


class HeldWriter:
    """Records each batch; holds the first transaction open until released."""

    def __init__(self, fail_batch: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.inside = threading.Event()
        self.release = threading.Event()
        self.fail_batch = fail_batch

    def __call__(self, items: Sequence[int]) -> list[str]:
        if not self.batches:
            self.inside.set()
            assert self.release.wait(WAIT)
        self.batches.append(list(items))
        if len(self.batches) == self.fail_batch:
            raise RuntimeError("the database refused the batch")
        return [f"result {i}" for i in items]


def _offer_while_held(writer: HeldWriter, n: int, max_batch: int = 64) -> list[str | None]:
    group: GroupCommit[int, str] = GroupCommit(writer, max_batch=max_batch)
    with ThreadPoolExecutor(n) as pool:
        first = pool.submit(group.offer, 0)
        assert writer.inside.wait(WAIT)
        rest = [pool.submit(group.offer, i) for i in range(1, n)]
        for _ in range(int(WAIT * 100)):  # until everyone has queued behind the first
            if group.waiting == n - 1:
                break
            threading.Event().wait(0.01)
        assert group.waiting == n - 1
        writer.release.set()
        return [first.result(WAIT)] + [f.result(WAIT) for f in rest]


def test_writers_arriving_during_a_commit_share_the_next_one() -> None:
    writer = HeldWriter()
    got = _offer_while_held(writer, 8)
    assert got == [f"result {i}" for i in range(8)]  # every writer gets its own result
    assert writer.batches[0] == [0]
    assert sorted(writer.batches[1]) == list(range(1, 8)) and len(writer.batches) == 2


def test_a_batch_is_never_larger_than_its_limit() -> None:
    writer = HeldWriter()
    got = _offer_while_held(writer, 9, max_batch=3)
    assert got == [f"result {i}" for i in range(9)]
    assert [len(b) for b in writer.batches] == [1, 3, 3, 2]


def test_a_failed_batch_sends_each_of_its_writers_back_to_write_alone() -> None:
    writer = HeldWriter(fail_batch=2)
    got = _offer_while_held(writer, 5)
    assert got == ["result 0", None, None, None, None]


def test_concurrent_submits_each_get_their_own_entry(db_url: str, tmp_path: Path) -> None:
    svc = Service.init(db_url, None, "test.example/log", tmp_path / "log.key")
    try:
        svc.submit(json.dumps(DOC))  # the holder's key is now known
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda _: svc.submit(json.dumps(DOC)), range(64)))
        assert len({g.id for g in got}) == 64
        for g in got:
            (raw,) = svc.ledger.entries(g.log_index, g.log_index + 1)
            entry = json.loads(raw)
            assert (entry["kind"], entry["request"], entry["outcome"]) == (
                "decision",
                g.id,
                g.outcome,
            )
            assert svc.get(g.id).stage == "decided"
        assert_log_audits(svc)
    finally:
        svc.close()


def test_one_bad_submit_among_many_fails_alone(db_url: str, tmp_path: Path) -> None:
    svc = Service.init(db_url, None, "test.example/log", tmp_path / "log.key")
    try:
        svc.submit(json.dumps(DOC))
        ids = iter([f"r{i:020x}" for i in range(1, 24)] + ["r" + "0" * 19 + "1"])  # one repeat
        lock = threading.Lock()

        def new_id() -> str:
            with lock:
                return next(ids)

        svc.new_id = new_id
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(svc.submit, json.dumps(DOC)) for _ in range(24)]
        failed = [f for f in futures if f.exception() is not None]
        assert len(failed) == 1
        assert isinstance(failed[0].exception(), CarewallError)
        recorded = {f.result().id for f in futures if f.exception() is None}
        assert len(recorded) == 23
        assert_log_audits(svc)
    finally:
        svc.close()


@pytest.mark.parametrize("max_batch", [0, -1])
def test_a_batch_limit_below_one_is_refused(max_batch: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(HeldWriter(), max_batch=max_batch)
