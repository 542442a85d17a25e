"""The audit loop's plumbing: bundles fetched ahead, tiles folded whole, the collector paused."""

from __future__ import annotations

import gc
import hashlib
import threading
from collections.abc import Generator, Iterator

import pytest

from carewall.audit.fetch import FetchError, prefetched
from carewall.audit.pipeline import extend as _extend
from carewall.audit.pipeline import leaf_hashes as _leaf_hashes
from carewall.collector import paused
from carewall.errors import VerificationError
from carewall.ledger.merkle import CompactRange, hash_leaf


def bundles(
    n: int, fail_at: int | None = None, error: Exception | None = None
) -> Iterator[tuple[int, list[bytes]]]:
    for k in range(n):
        if k == fail_at:
            raise error or FetchError("could not fetch")
        yield k * 256, [b"%d" % (k * 256 + i) for i in range(256)]


def test_prefetched_yields_the_same_bundles_in_order() -> None:
    assert list(prefetched(bundles(7))) == list(bundles(7))
    assert list(prefetched(bundles(0))) == []


@pytest.mark.parametrize("error", [FetchError("gone"), VerificationError("not served")])
def test_an_error_is_raised_when_its_bundle_is_due(error: Exception) -> None:
    got = []
    with pytest.raises(type(error)):
        for first, _ in prefetched(bundles(6, fail_at=4, error=error)):
            got.append(first)
    assert got == [0, 256, 512, 768]  # every bundle before it, and none after


def test_the_fetching_thread_ends_when_the_loop_stops_early() -> None:
    before = {t.ident for t in threading.enumerate()}
    it = prefetched(bundles(50), ahead=2)
    assert isinstance(it, Generator)
    assert next(it)[0] == 0
    it.close()  # as a loop left by an exception does
    assert not [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]


@pytest.mark.parametrize("start", [0, 1, 100, 255, 256, 300, 512])
def test_tiles_fold_into_the_range_as_their_leaves_do(start: int) -> None:
    datas = [b"entry %d" % i for i in range(start + 3 * 256 + 17)]
    whole = CompactRange()
    whole.extend([hash_leaf(d) for d in datas], collect=False)
    cr = CompactRange()
    cr.extend([hash_leaf(d) for d in datas[:start]], collect=False)
    rest = datas[start:]
    # bundles as the log serves them: up to the next multiple of 256, then whole tiles
    cut = min(len(rest), -start % 256)
    pieces = [rest[:cut]] if cut else []
    pieces += [rest[i : i + 256] for i in range(cut, len(rest), 256)]
    for piece in pieces:
        leaves = _leaf_hashes(piece)
        assert leaves == [hashlib.sha256(b"\x00" + d).digest() for d in piece]
        _extend(cr, leaves)
    assert (cr.size, cr.frontier(), cr.root()) == (whole.size, whole.frontier(), whole.root())


def test_the_collector_is_paused_for_a_run_and_restored_after() -> None:
    assert gc.isenabled()
    with paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused():
        raise RuntimeError("a run that fails")
    assert gc.isenabled()
    gc.disable()
    try:
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()


def test_what_a_pass_made_is_handed_to_the_oldest_generation() -> None:
    gc.collect()
    with paused():
        kept = [[i] for i in range(5000)]  # containers made while the collector is off
        assert gc.get_count()[0] >= 5000
    # Already old: no young collection will sweep them again to find them alive.
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(x) in oldest for x in kept)
    assert gc.get_freeze_count() == 0  # nothing is left frozen


def test_cyclic_garbage_of_a_pass_is_still_collected_by_a_full_collection() -> None:
    class Node:
        pass

    with paused():
        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        gone = [id(a)]
        del a, b
    assert gc.collect() >= 2
    assert not any(id(o) in gone for o in gc.get_objects() if isinstance(o, Node))


def test_another_callers_frozen_objects_stay_frozen() -> None:
    # The count alone is no witness: frozen objects another thread frees (a Spark or
    # server thread in the same worker) lower it during the pass. An object this test
    # holds is: frozen objects are in no generation that gc.get_objects() walks.
    held = [["another caller's"]]
    gc.collect()
    gc.freeze()
    try:
        assert not any(o is held for o in gc.get_objects())
        with paused():
            made = [[i] for i in range(1000)]
        assert gc.get_freeze_count() > 0
        assert not any(o is held for o in gc.get_objects())  # not released by this pass
        assert any(o is made for o in gc.get_objects())  # what the pass made is not frozen
        assert len(made) == 1000
    finally:
        gc.unfreeze()
    assert any(o is held for o in gc.get_objects())  # the check above can fail
