"""Submitting many requests together: each decided at once, recorded in one transaction.

Every test's log is replayed by the auditor afterwards (the ``svc`` fixture), so a batch
that broke a transaction's contiguity or the order of entries would fail there too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carewall.errors import ConflictError, InputError, NotFoundError, StorageError
from carewall.service import Service

Doc = Callable[..., dict[str, Any]]

_TRACING = {"requester": "home-office-ie", "purpose": "immigration_enforcement"}


def _docs(make_doc: Doc, n: int, start: int = 0) -> list[dict[str, Any]]:
    """Requests that alternate between one a reviewer must decide and a pledge refusal."""
    return [
        make_doc(reference=f"MPS-2026-{start + i:06d}", **(_TRACING if i % 2 else {}))
        for i in range(n)
    ]


def _entries(svc: Service, first: int) -> list[dict[str, Any]]:
    return [json.loads(e) for e in svc.ledger.entries(first, svc.ledger.size())]


@pytest.fixture
def ticking(svc: Service) -> Iterator[Callable[[], datetime]]:
    """The service's clock, one minute on at each call of the returned ``tick``."""
    now = [datetime(2036, 3, 2, 9, 0, tzinfo=UTC)]
    svc.clock = lambda: now[0]

    def tick() -> datetime:
        now[0] += timedelta(minutes=1)
        return now[0]

    yield tick


def test_requests_submitted_together_are_recorded_as_if_one_by_one(
    svc: Service, make_doc: Doc, ticking: Callable[[], datetime]
) -> None:
    svc.submit(make_doc(reference="MPS-2026-999999"))  # the holder's key exists from here on
    alone = []
    for doc in _docs(make_doc, 5):
        ticking()
        alone.append(svc.submit(doc))
    start = svc.ledger.size()
    times = []
    with svc.submit_together() as batch:
        pending = []
        for doc in _docs(make_doc, 5, start=100):
            times.append(ticking())
            pending.append(batch.submit(doc))
        assert svc.ledger.size() == start  # decided, not yet recorded
    assert batch.recorded == 5
    assert [p.outcome for p in pending] == [a.outcome for a in alone]
    assert {p.outcome for p in pending} == {"refused", "review"}
    for p, a, when in zip(pending, alone, times, strict=True):
        got, one = svc.get(p.id), svc.get(a.id)
        assert (got.stage, got.outcome, got.decision) == (one.stage, one.outcome, one.decision)
        assert got.decided_at == when.strftime("%Y-%m-%dT%H:%M:%SZ")  # its own time
        assert got.received_at == one.received_at  # as the document says
        assert [e.kind for e in got.events] == [e.kind for e in one.events]
    entries = _entries(svc, start)
    # In the order submitted: each request entry followed by its decision, at its own time.
    assert [(e["kind"], e["request"]) for e in entries] == [
        (kind, p.id) for p in pending for kind in ("request", "decision")
    ]
    assert [e["time"] for e in entries[::2]] == [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in times]


def test_nothing_of_a_batch_is_recorded_when_its_block_raises(svc: Service, make_doc: Doc) -> None:
    svc.submit(make_doc(reference="MPS-2026-999999"))
    size = svc.ledger.size()
    ids: list[str] = []
    with pytest.raises(RuntimeError, match="the caller gave up"), svc.submit_together() as batch:
        ids += [batch.submit(doc).id for doc in _docs(make_doc, 3)]
        raise RuntimeError("the caller gave up")
    assert svc.ledger.size() == size
    for rid in ids:
        with pytest.raises(NotFoundError):
            svc.get(rid)
    with pytest.raises(ConflictError, match="block has ended"):  # never silently dropped
        batch.submit(make_doc(reference="MPS-2026-000009"))
    assert svc.ledger.size() == size


def test_a_bad_document_is_refused_at_once_and_the_others_are_still_recorded(
    svc: Service, make_doc: Doc
) -> None:
    svc.submit(make_doc(reference="MPS-2026-999999"))
    with svc.submit_together() as batch:
        before = batch.submit(make_doc(reference="MPS-2026-000001"))
        with pytest.raises(InputError) as e:
            batch.submit(make_doc(reference="MPS-2026-000002", purpose="  "))
        assert e.value.field == "purpose"
        after = batch.submit(make_doc(reference="MPS-2026-000003"))
    assert batch.recorded == 2
    assert svc.get(before.id).reference == "MPS-2026-000001"
    assert svc.get(after.id).reference == "MPS-2026-000003"


def test_a_policy_change_while_a_batch_waits_records_none_of_it(
    svc: Service, make_doc: Doc
) -> None:
    svc.submit(make_doc(reference="MPS-2026-999999"))
    size = svc.ledger.size()
    ids: list[str] = []
    conflict = pytest.raises(ConflictError, match="none of them was recorded")
    with conflict as e, svc.submit_together() as batch:
        ids += [batch.submit(doc).id for doc in _docs(make_doc, 2)]
        svc.set_local_policy("// nothing is permitted\n")  # decided under the old one
    assert "submit them again" in (e.value.fix or "")
    assert svc.ledger.size() == size + 1  # the policy entry alone
    for rid in ids:
        with pytest.raises(NotFoundError):
            svc.get(rid)


def test_what_cannot_share_a_transaction_is_recorded_at_once_and_in_order(
    svc: Service, make_doc: Doc
) -> None:
    many = [
        {"ref": f"94347659{i:02d}", "is_child": False, "is_victim_or_witness": False}
        for i in range(40)
    ]
    start = svc.ledger.size()
    with svc.submit_together() as batch:
        first = batch.submit(make_doc(reference="MPS-2026-000001"))  # the holder's first
        assert svc.ledger.size() == start + 2
        second = batch.submit(make_doc(reference="MPS-2026-000002"))
        assert svc.ledger.size() == start + 2  # waits for the flush
        big = batch.submit(make_doc(reference="MPS-2026-000003", subjects=many))
        assert svc.ledger.size() == start + 6  # the one waiting first, then the big one
        last = batch.submit(make_doc(reference="MPS-2026-000004"))
    order = [e["request"] for e in _entries(svc, start) if e["kind"] == "request"]
    assert order == [first.id, second.id, big.id, last.id]
    assert len(svc.get(big.id).subjects) == 40


def test_a_batch_that_reuses_a_recorded_id_is_refused_whole_as_a_storage_error(
    svc: Service, make_doc: Doc
) -> None:
    # A dishonest or broken id source: the batch's rows go by the driver's own executemany
    # on SQLite, and its refusal must still arrive as carewall's error, never sqlite3's.
    first = svc.submit(make_doc(reference="MPS-2026-999998"))
    size = svc.ledger.size()
    ids = iter(["r" + "f" * 20, first.id])
    svc.new_id = lambda: next(ids)
    with pytest.raises(StorageError, match="refused"), svc.submit_together() as batch:
        for doc in _docs(make_doc, 2):
            batch.submit(doc)
    assert svc.ledger.size() == size
    with pytest.raises(NotFoundError):
        svc.get("r" + "f" * 20)
    assert svc.get(first.id).stage == "decided"
