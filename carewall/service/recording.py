"""A release's notices, written by its job a batch at a time after the reviewer's call.

The reviewer's call records the release once (its ``review`` and ``release`` entries and
its :class:`~carewall.service.release_plan.ReleasePlan`) and queues a job. The job's first
stage, here, walks the request's subjects in position order and gives each released
subject its notice: a row, and (unless the notices are deferred) a ``notice`` log entry,
written in the same transaction as the row. After a lifted deferral the same walk turns
each deferred notice into a sent one with its entry. Then the job delivers the letters
(:mod:`carewall.service.delivery`).

Safe to crash and to run twice: each batch is one transaction that also moves the job's
``cursor``; it first locks the job's row (and checks the job is still this worker's) and
the request's row, and decides what to write from what is committed, so a batch either
happened entirely or not at all, and a subject already given a notice is skipped
(``uq_notices_subject`` makes a second notice for one subject impossible in any case).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from carewall.ledger.subjects import SubjectTree
from carewall.policy.facts import SubjectFacts
from carewall.service import logentries as le
from carewall.service import tables as t
from carewall.service.jobstore import jobs
from carewall.service.preparing import commitments_of
from carewall.service.release_plan import ReleasePlan
from carewall.service.statements import _LOCK_REQUEST

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row

    from carewall.service.facade import Service

__all__ = ["BATCH", "Recorded", "record_notices"]

BATCH = 5000  # subjects looked at per transaction
Recorded = Literal["done", "lost", "stopped"]
# (notices recorded so far by this run, subjects in the release)
OnRecorded = Callable[[int, int], None]

_SUBJECTS = (
    sa.select(
        t.subjects.c.position,
        t.subjects.c.is_child,
        t.subjects.c.is_victim_or_witness,
        t.subjects.c.consent,
        t.subjects.c.commitment,
        t.subjects.c.held_child,
    )
    .where(
        (t.subjects.c.request_id == sa.bindparam("rid"))
        & (t.subjects.c.position >= sa.bindparam("cursor"))
    )
    .order_by(t.subjects.c.position)
    .limit(sa.bindparam("n"))
)
_EXISTING = sa.select(t.notices.c.position, t.notices.c.id, t.notices.c.status).where(
    (t.notices.c.request_id == sa.bindparam("rid"))
    & t.notices.c.position.between(sa.bindparam("lo"), sa.bindparam("hi"))
)
_HELD = (
    t.subjects.update()
    .where(
        (t.subjects.c.request_id == sa.bindparam("rid"))
        & (t.subjects.c.position == sa.bindparam("pos"))
    )
    .values(
        held_child=sa.bindparam("child"),
        held_victim=sa.bindparam("victim"),
        held_consent=sa.bindparam("h_consent"),
    )
)
_INSERT_NOTICE = t.notices.insert()
_LOCK_JOB = sa.select(jobs).where(jobs.c.id == sa.bindparam("job")).with_for_update()
# A batch moves the job's cursor; the last one also ends the recording stage.
_JOB_ROW = jobs.update().where(jobs.c.id == sa.bindparam("job"))
_MOVED = _JOB_ROW.values(done=jobs.c.done + sa.bindparam("n"), heartbeat_at=sa.bindparam("at"))
_ENDED = _JOB_ROW.values(done=0, stage="deliver")
_SENT = (
    t.notices.update()
    .where((t.notices.c.id == sa.bindparam("nid")) & (t.notices.c.status == "deferred"))
    .values(status="sent", log_index=sa.bindparam("li"), review_date=None)
)


class _Trees:
    """A request's subjects tree, built once per run of the recording stage (a request's
    subjects never change once it is received), for each notice's inclusion path."""

    def __init__(self) -> None:
        self._trees: dict[str, SubjectTree] = {}

    def of(self, conn: Connection, request_id: str) -> SubjectTree:
        tree = self._trees.get(request_id)
        if tree is None:
            tree = self._trees[request_id] = SubjectTree(commitments_of(conn, request_id))
        return tree


def _batch(
    svc: Service, conn: Connection, req: Row[Any], cursor: int, trees: _Trees
) -> tuple[int, int, bool]:
    """Record the notices of up to :data:`BATCH` subjects from ``cursor``.

    Returns (the next cursor, notices written or turned to sent, whether the walk ended).
    """
    rel = json.loads(req.release)
    plan = ReleasePlan.of_record(rel)
    # A release recorded before plans lists each group's subjects (and wrote every row).
    listed = {p: k for k, g in enumerate(rel["groups"]) for p in g.get("subjects", ())}
    logs = [int(g["log_index"]) for g in rel["groups"]]
    deferred = req.deferral == "deferred"
    rows = conn.execute(_SUBJECTS, {"rid": req.id, "cursor": cursor, "n": BATCH}).all()
    if not rows:
        return cursor, 0, True
    lo, hi = int(rows[0].position), int(rows[-1].position)
    existing = {
        int(r.position): r for r in conn.execute(_EXISTING, {"rid": req.id, "lo": lo, "hi": hi})
    }
    now = le.rfc3339(svc.clock())
    held_rows: list[dict[str, Any]] = []
    new_rows: list[dict[str, Any]] = []
    to_send: list[tuple[int, int, str, int | None]] = []  # position, group, commitment, row id
    for r in rows:
        pos = int(r.position)
        claimed = SubjectFacts(bool(r.is_child), bool(r.is_victim_or_witness), bool(r.consent))
        if plan is None:
            g = listed.get(pos)
        else:
            held = plan.held(pos, claimed)
            g = plan.pairs.get((claimed, held))
        if plan is not None and r.held_child is None:
            held_rows.append(
                {
                    "rid": req.id,
                    "pos": pos,
                    "child": held.is_child,
                    "victim": held.is_victim_or_witness,
                    "h_consent": held.consent,
                }
            )
        if g is None:
            continue
        have = existing.get(pos)
        if have is None and deferred:
            new_rows.append(
                {
                    "request_id": req.id,
                    "position": pos,
                    "status": "deferred",
                    "review_date": req.deferral_until,
                    "release_index": logs[g],
                    "log_index": int(rel["deferral_index"]),
                    "created_at": now,
                }
            )
        elif have is None or (have.status == "deferred" and not deferred):
            to_send.append((pos, g, r.commitment, None if have is None else int(have.id)))
    idx: list[int] = []
    if to_send:
        tree = trees.of(conn, req.id)
        entries = [
            dict(le.notice_entry(req.id, c, pos, tree.proof(pos), now)) for pos, _, c, _ in to_send
        ]
        idx = svc.ledger.append_in(conn, entries)
    turned: list[dict[str, Any]] = []
    for k, (pos, g, _, nid) in enumerate(to_send):
        if nid is None:
            new_rows.append(
                {
                    "request_id": req.id,
                    "position": pos,
                    "status": "sent",
                    "review_date": None,
                    "release_index": logs[g],
                    "log_index": idx[k],
                    "created_at": now,
                }
            )
        else:
            turned.append({"nid": nid, "li": idx[k]})
    if new_rows:
        conn.execute(_INSERT_NOTICE, new_rows)
    if turned:
        conn.execute(_SENT, turned)
    if held_rows:
        conn.execute(_HELD, held_rows)
    return hi + 1, len(new_rows) + len(turned), len(rows) < BATCH


def record_notices(
    svc: Service,
    job_id: int,
    worker: str,
    *,
    on_recorded: OnRecorded | None = None,
    stop: threading.Event | None = None,
) -> Recorded:
    """Run the recording stage of job ``job_id``, which ``worker`` holds.

    ``done``: every notice is written (or the job was past this stage already); ``lost``:
    the job is no longer this worker's; ``stopped``: ``stop`` was set between batches.
    """
    written = 0
    trees = _Trees()
    while True:
        if stop is not None and stop.is_set():
            return "stopped"
        with svc._write() as conn:
            job = conn.execute(_LOCK_JOB, {"job": job_id}).one_or_none()
            if job is None or job.worker != worker or job.state != "running":
                return "lost"
            if job.stage != "record":
                return "done"
            req = conn.execute(_LOCK_REQUEST, {"rid": job.request_id}).one()
            cursor, n, ended = _batch(svc, conn, req, int(job.cursor), trees)
            now = le.rfc3339(svc.clock())
            if ended:
                conn.execute(_ENDED, {"job": job_id, "cursor": cursor, "heartbeat_at": now})
            else:
                conn.execute(_MOVED, {"job": job_id, "cursor": cursor, "at": now, "n": n})
        written += n
        if on_recorded is not None:
            on_recorded(written, int(job.total))
        if ended:
            return "done"
