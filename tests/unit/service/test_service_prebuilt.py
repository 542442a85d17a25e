"""Statements built once, and reads and transactions the service no longer repeats.

The record read (:mod:`carewall.service.request_record`), the job queue's claims
(:mod:`carewall.service.jobstore`) and a drain round give what they gave when each call
built its own statements, for every request and job they are given.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from carewall.errors import NotFoundError
from carewall.service import Service, jobstore
from carewall.service import request_record as rr
from carewall.service import tables as t
from carewall.service.jobs import drain, record_queued
from carewall.service.jobstore import claim_next, list_jobs

Doc = Callable[..., dict[str, Any]]

_TWO = [
    {"ref": "9434765919", "is_child": False, "is_victim_or_witness": False},
    {"ref": "9434765920", "is_child": False, "is_victim_or_witness": False},
]


def _fresh(request_id: str) -> list[sa.Select[Any]]:
    """The record's five reads as ``get`` built them on every call before."""
    return [
        sa.select(t.requests).where(t.requests.c.id == request_id),
        sa.select(t.subjects)
        .where(t.subjects.c.request_id == request_id)
        .order_by(t.subjects.c.position),
        sa.select(t.events).where(t.events.c.request_id == request_id).order_by(t.events.c.id),
        sa.select(t.appeals).where(t.appeals.c.request_id == request_id).order_by(t.appeals.c.id),
        sa.select(t.notices).where(t.notices.c.request_id == request_id).order_by(t.notices.c.id),
    ]


def test_prebuilt_record_reads_give_the_rows_fresh_statements_gave(
    svc: Service, make_doc: Doc
) -> None:
    released = svc.submit(make_doc(subjects=_TWO)).id
    svc.review(released, "ig-whittington", release=True)
    svc.appeal(released, "subject", "I was never asked.", subject=1)
    pending = svc.submit(make_doc(reference="MPS-2026-000124")).id
    prebuilt = [rr.REQUEST, rr._SUBJECTS, rr._EVENTS, rr._APPEALS, rr._NOTICES]
    with svc.store.read() as conn:
        for rid in (released, pending, released):  # the same statements, other parameters
            for built, fresh in zip(prebuilt, _fresh(rid), strict=True):
                assert conn.execute(built, {"rid": rid}).all() == conn.execute(fresh).all()
    counts = [(len(svc.get(r).notices), svc.get(r).appeal is not None) for r in (released, pending)]
    assert counts == [(2, True), (0, False)]


def test_get_reads_each_request_with_its_own_parameters(svc: Service, make_doc: Doc) -> None:
    a = svc.submit(make_doc(subjects=_TWO)).id
    b = svc.submit(make_doc(reference="MPS-2026-000124")).id
    rec_a = svc.review(a, "ig-whittington", release=True)  # review returns the full record
    assert rec_a == svc.get(a)
    assert rec_a.release is not None and rec_a.release.recipient_name
    assert [s.position for s in rec_a.subjects] == [0, 1]
    assert all(s.held is not None for s in rec_a.subjects)
    rec_b = svc.get(b)
    assert (rec_b.reference, rec_b.stage, rec_b.release, rec_b.notices) == (
        "MPS-2026-000124",
        "decided",
        None,
        [],
    )
    assert svc.get(a) == rec_a and svc.get(b) == rec_b
    with pytest.raises(NotFoundError) as e:
        svc.get("r" + "0" * 20)
    assert e.value.field == "id"


def test_record_review_returns_the_summary_review_the_record(svc: Service, make_doc: Doc) -> None:
    a = svc.submit(make_doc()).id
    summary = svc.record_review(a, "ig-whittington", release=False)
    assert summary == svc.summary(a)
    assert (summary.stage, summary.outcome) == ("reviewed", "refused")
    svc.appeal(a, "requester", "The address is needed to arrest.")
    decided = svc.decide_appeal(a, "caldicott-whittington", uphold=True)
    assert decided == svc.get(a) and decided.appeal is not None
    assert decided.appeal.result == "upheld"


def test_claim_next_skips_named_jobs_and_honours_backoff(
    sqlite_url: str, tmp_path: Path, make_doc: Doc
) -> None:
    svc = Service.init(sqlite_url, None, "prebuilt.test/log", tmp_path / "log.key")
    try:
        svc.auto_publish = False  # jobs are only queued
        ids = [svc.submit(make_doc(reference=f"MPS-2026-00020{i}")).id for i in range(3)]
        for rid in ids:
            svc.review(rid, "ig-whittington", release=True)
        assert record_queued(svc) == 3
        jobs = sorted(j.id for j in list_jobs(svc.store, state="queued"))
        now, lease = svc.clock(), svc.job_policy.lease
        with svc.store.write() as conn:
            row = claim_next(conn, "w1", now, lease, ignore_backoff=True, skip={jobs[0]})
            assert row is not None and (row.id, row.worker, row.state) == (jobs[1], "w1", "running")
            row = claim_next(conn, "w1", now, lease, ignore_backoff=True)
            assert row is not None and row.id == jobs[0] and row.attempts == 1
            # the last job may not run before its run_after, unless backoff is ignored
            conn.execute(t.metadata.tables["svc_jobs"].update().values(run_after="2999-01-01"))
            assert claim_next(conn, "w1", now, lease) is None
            row = claim_next(conn, "w1", now, lease, ignore_backoff=True, skip=jobs[:2])
            assert row is not None and row.id == jobs[2]
            assert claim_next(conn, "w1", now, lease, ignore_backoff=True) is None
    finally:
        svc.close()


def test_drain_names_only_unfinished_jobs_to_skip(
    sqlite_url: str, tmp_path: Path, make_doc: Doc, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = Service.init(sqlite_url, None, "prebuilt.test/log", tmp_path / "log.key")
    try:
        svc.auto_publish = False
        for i in range(4):
            rid = svc.submit(make_doc(reference=f"MPS-2026-00030{i}")).id
            svc.review(rid, "ig-whittington", release=True)
        assert record_queued(svc) == 4
        svc.publish_pending()
        svc.auto_publish = True
        skipped: list[set[int]] = []
        claim = jobstore.claim_next

        def spy(*args: Any, skip: Any = (), **kwargs: Any) -> Any:
            skipped.append(set(skip))
            return claim(*args, skip=skip, **kwargs)

        monkeypatch.setattr(jobstore, "claim_next", spy)  # what jobs.drain calls
        ran = drain(svc)
        assert (ran.jobs, ran.sent) == (4, 4)
        assert skipped == [set()] * 5  # every job ended done: none needed skipping
        done = list_jobs(svc.store)
        assert [(j.state, j.done, j.attempts) for j in done] == [("done", 1, 1)] * 4
        assert all(n.delivered_at for n in svc.notices())
    finally:
        svc.close()


def test_record_queued_with_nothing_to_record_takes_no_writer_lock(
    sqlite_url: str, tmp_path: Path
) -> None:
    svc = Service.init(sqlite_url, None, "prebuilt.test/log", tmp_path / "log.key")
    try:
        begun: list[str] = []

        @event.listens_for(svc.store.writer, "before_cursor_execute")
        def _seen(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
            if statement.startswith("BEGIN"):
                begun.append(statement)

        assert record_queued(svc) == 0
        assert begun == []
    finally:
        svc.close()
