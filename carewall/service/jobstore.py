"""The job table and its statements: queue, claim once, report progress, finish, give back.

A job is one piece of long work recorded in the same transaction as the decision that
caused it (today: delivering the notices of one release or of one lifted deferral), so it
survives any crash after that commit. Its life:

``queued`` → claimed by exactly one worker → ``running`` (progress and heartbeat written in
the same transaction as each batch of work) → ``done``; or given back to ``queued`` (its
worker failed, or other workers still hold some of its notices) with a ``run_after`` time.
A ``running`` job whose heartbeat is older than the lease is taken to have lost its worker
(killed, or cut off from the database) and may be claimed by another.

Claiming is one transaction: on PostgreSQL ``SELECT … FOR UPDATE SKIP LOCKED`` picks a row
no other worker is claiming; on SQLite the writer lock (``BEGIN IMMEDIATE``) does the same.
Both then claim with a conditional ``UPDATE … WHERE id = :id AND <still claimable>``, and a
worker owns the job only if that statement changed the row. Nothing here holds personal
data: ids, counts, times, and error codes.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Connection, Row

from carewall.service import tables as t
from carewall.service.logentries import rfc3339
from carewall.storage.db import Store

__all__ = [
    "JOB",
    "NOTICES",
    "JobRecord",
    "QueuedJob",
    "any_to_record",
    "claim_next",
    "close_finished",
    "enqueue",
    "finish",
    "give_back",
    "jobs",
    "latest_for",
    "list_jobs",
    "progress",
]

NOTICES = "notices"  # the kind of job that delivers one request's notices

jobs = sa.Table(
    "svc_jobs",
    t.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("request_id", sa.String(40)),
    sa.Column("state", sa.String(16), nullable=False),  # queued | running | done
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("done", sa.Integer, nullable=False),
    sa.Column("created_at", sa.String(20), nullable=False),
    sa.Column("run_after", sa.String(20), nullable=False),
    sa.Column("started_at", sa.String(20)),
    sa.Column("heartbeat_at", sa.String(20)),
    sa.Column("finished_at", sa.String(20)),
    sa.Column("worker", sa.String(100)),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.String(200)),
    sa.Column("stage", sa.String(16)),  # record | deliver (NULL: deliver)
    sa.Column("cursor", sa.Integer, nullable=False, server_default="0"),
)

JobState = Literal["queued", "running", "done"]


class JobRecord(BaseModel):
    """A job as reviewers and operators see it: what, how far, and since when."""

    model_config = ConfigDict(frozen=True)

    id: int
    kind: str
    request_id: str | None
    state: JobState
    total: int
    done: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    heartbeat_at: str | None
    attempts: int
    error: str | None
    # "record" while the job still writes its notices (rows and log entries), then "deliver"
    stage: Literal["record", "deliver"] = "deliver"


@dataclass(frozen=True)
class QueuedJob:
    """A job just queued; ``worker`` is set when its caller claimed it to run it at once."""

    id: int
    total: int
    worker: str | None


def _record(r: Row[Any]) -> JobRecord:
    return JobRecord(
        id=int(r.id),
        kind=r.kind,
        request_id=r.request_id,
        state=r.state,
        total=int(r.total),
        done=int(r.done),
        created_at=r.created_at,
        started_at=r.started_at,
        finished_at=r.finished_at,
        heartbeat_at=r.heartbeat_at,
        attempts=int(r.attempts),
        error=r.error,
        stage="record" if r.stage == "record" else "deliver",
    )


def enqueue(
    conn: Connection,
    kind: str,
    request_id: str,
    total: int,
    now: str,
    worker: str | None,
    *,
    record: bool = False,
) -> QueuedJob:
    """Record a job inside the caller's transaction (it commits with the decision).

    With ``worker`` the job is queued already claimed by that worker (it will run it as
    soon as the transaction commits), so no other worker starts it in between; if that
    worker dies first, the lease runs out and another takes it over.
    """
    values: dict[str, Any] = {
        "kind": kind,
        "request_id": request_id,
        "state": "queued",
        "total": total,
        "done": 0,
        "created_at": now,
        "run_after": now,
        "attempts": 0,
        "stage": "record" if record else "deliver",
        "cursor": 0,
    }
    if total == 0:
        values |= {"state": "done", "finished_at": now}
    elif worker is not None:
        values |= {
            "state": "running",
            "worker": worker,
            "started_at": now,
            "heartbeat_at": now,
            "attempts": 1,
        }
    job_id = conn.execute(_ENQUEUE, values).scalar_one()
    return QueuedJob(int(job_id), total, worker if total else None)


_Time = str | sa.BindParameter[str]


def _claimable(now: _Time, stale: _Time, ignore_backoff: bool) -> sa.ColumnElement[bool]:
    """Queued (and due at ``now``, unless ``ignore_backoff``), or running with a heartbeat
    at or before ``stale`` (times, or bound parameters)."""
    queued = jobs.c.state == "queued"
    if not ignore_backoff:
        queued = queued & (jobs.c.run_after <= now)
    return queued | ((jobs.c.state == "running") & (jobs.c.heartbeat_at <= stale))


# Statements built once (per variant), so their compiled forms are reused. Parameters: ``at``
# (now), ``stale`` (now less the lease), ``job``, ``me`` (the worker), ``skip`` (ids).
_AT: sa.BindParameter[str] = sa.bindparam("at")
_STALE: sa.BindParameter[str] = sa.bindparam("stale")
JOB = sa.select(jobs).where(jobs.c.id == sa.bindparam("job"))
_ENQUEUE = jobs.insert().returning(jobs.c.id)
_PICKS: dict[tuple[bool, bool], sa.Select[Any]] = {}
_CLAIMS: dict[bool, sa.Update] = {}


def _pick(ignore_backoff: bool, skipping: bool) -> sa.Select[Any]:
    key = (ignore_backoff, skipping)
    if key not in _PICKS:
        cond = _claimable(_AT, _STALE, ignore_backoff)
        if skipping:
            cond = cond & jobs.c.id.not_in(sa.bindparam("skip", expanding=True))
        _PICKS[key] = (
            sa.select(jobs.c.id)
            .where(cond)
            .order_by(jobs.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite holds the writer lock
        )
    return _PICKS[key]


def _claim(ignore_backoff: bool) -> sa.Update:
    if ignore_backoff not in _CLAIMS:
        _CLAIMS[ignore_backoff] = (
            jobs.update()
            .where((jobs.c.id == sa.bindparam("job")) & _claimable(_AT, _STALE, ignore_backoff))
            .values(
                state="running",
                worker=sa.bindparam("me"),
                started_at=sa.func.coalesce(jobs.c.started_at, _AT),
                heartbeat_at=_AT,
                attempts=jobs.c.attempts + 1,
            )
        )
    return _CLAIMS[ignore_backoff]


def claim_next(
    conn: Connection,
    worker: str,
    now: datetime,
    lease: float,
    *,
    ignore_backoff: bool = False,
    skip: Collection[int] = (),
) -> Row[Any] | None:
    """Claim the oldest claimable job for ``worker`` in the caller's write transaction.

    ``skip`` names jobs not to claim (those this worker already ran in this round).
    """
    params: dict[str, Any] = {
        "at": rfc3339(now),
        "stale": rfc3339(now - timedelta(seconds=lease)),
        "me": worker,
    }
    if skip:
        params["skip"] = list(skip)
    job_id = conn.execute(_pick(ignore_backoff, bool(skip)), params).scalar()
    if job_id is None:
        return None
    claimed = conn.execute(_claim(ignore_backoff), {**params, "job": job_id})
    if claimed.rowcount != 1:
        return None
    return conn.execute(JOB, {"job": job_id}).one()


_HOLD_PICK = (
    sa.select(jobs.c.id)
    .where((jobs.c.state == "queued") & (jobs.c.stage == "record"))
    .order_by(jobs.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)
)
_HOLD = (
    jobs.update()
    .where((jobs.c.id == sa.bindparam("job")) & (jobs.c.state == "queued"))
    .values(state="running", worker=sa.bindparam("me"), heartbeat_at=_AT)
)


def any_to_record(conn: Connection) -> bool:
    """Whether a queued job has notices still to write (a read: it holds nothing)."""
    return conn.execute(_HOLD_PICK).first() is not None


def hold_for_recording(conn: Connection, worker: str, now: str) -> int | None:
    """Hold the oldest queued job that has not written its notices, for ``worker``.

    Not a claim: the job's attempts and start are left alone, and the holder gives it back
    to the queue (:func:`give_back`) once its notices are written, for a worker to deliver.
    """
    job_id = conn.execute(_HOLD_PICK).scalar()
    if job_id is None:
        return None
    held = conn.execute(_HOLD, {"job": job_id, "me": worker, "at": now})
    return int(job_id) if held.rowcount == 1 else None


_PROGRESS = (
    jobs.update()
    .where(
        (jobs.c.id == sa.bindparam("job"))
        & (jobs.c.worker == sa.bindparam("me"))
        & (jobs.c.state == "running")
    )
    .values(done=jobs.c.done + sa.bindparam("n"), heartbeat_at=sa.bindparam("now"))
)


def progress(conn: Connection, job_id: int, worker: str, n: int, now: str) -> bool:
    """Count ``n`` more done and renew the lease, in the caller's transaction.

    False when the job is no longer this worker's (its lease ran out and another worker
    took it over): the caller should stop after the batch in hand.
    """
    done = conn.execute(_PROGRESS, {"job": job_id, "me": worker, "n": n, "now": now})
    return done.rowcount == 1


def _undelivered(request_id: Any) -> sa.Exists:
    return sa.exists().where(
        (t.notices.c.request_id == request_id)
        & (t.notices.c.status == "sent")
        & t.notices.c.delivered_at.is_(None)
    )


def finish(conn: Connection, job_id: int, worker: str, now: datetime, lease: float) -> str | None:
    """Close a notices job whose request has nothing left undelivered, or give it back.

    Returns the job's new state: ``done``, or ``queued`` when some of its notices are
    still held by other workers (it is tried again when the oldest of those claims could
    have run out); None when the job was no longer this worker's.
    """
    at = rfc3339(now)
    row = conn.execute(JOB, {"job": job_id}).one()
    if row.worker != worker or row.state != "running":
        return None
    if row.stage == "record":  # its notices are not all written yet: its worker goes on
        give_back(conn, job_id, worker, at, None, at)
        return "queued"
    if conn.execute(_ANY_UNDELIVERED, {"rid": row.request_id}).scalar():
        oldest = conn.execute(_OLDEST_CLAIM, {"rid": row.request_id}).scalar()
        retry = at
        if oldest:
            freed_at = datetime.fromisoformat(str(oldest).replace("Z", "+00:00"))
            retry = max(at, rfc3339(freed_at + timedelta(seconds=lease)))
        give_back(conn, job_id, worker, at, None, retry)
        return "queued"
    conn.execute(_DONE, {"job": job_id, "at": at})
    return "done"


_ANY_UNDELIVERED = sa.select(_undelivered(sa.bindparam("rid")))
_OLDEST_CLAIM = sa.select(sa.func.min(t.notices.c.claimed_at)).where(
    (t.notices.c.request_id == sa.bindparam("rid"))
    & (t.notices.c.status == "sent")
    & t.notices.c.delivered_at.is_(None)
)
_DONE = (
    jobs.update()
    .where(jobs.c.id == sa.bindparam("job"))
    .values(state="done", done=jobs.c.total, finished_at=_AT, heartbeat_at=_AT, error=None)
)


def give_back(
    conn: Connection, job_id: int, worker: str, now: str, error: str | None, retry_at: str = ""
) -> None:
    """Return a job this worker holds to the queue (to be tried again from ``retry_at``)."""
    values: dict[str, Any] = {"state": "queued", "worker": None, "run_after": retry_at or now}
    if error is not None:
        values["error"] = error[:200]
    conn.execute(_GIVE_BACK, {"job": job_id, "me": worker, **values})


# The SET columns come from the parameters (``error`` only when one is given).
_GIVE_BACK = jobs.update().where(
    (jobs.c.id == sa.bindparam("job"))
    & (jobs.c.worker == sa.bindparam("me"))
    & (jobs.c.state == "running")
)


def close_finished(conn: Connection, now: str) -> int:
    """Mark done every open notices job whose notices are all delivered.

    For notices delivered by a sweep rather than by their job (the demo, or a sweep that
    ran before the job was claimed). A worker still running such a job finds it done at
    its next progress report and stops. Returns how many were closed.
    """
    done = conn.execute(
        jobs.update()
        .where(
            (jobs.c.kind == NOTICES)
            & jobs.c.state.in_(("queued", "running"))
            & (jobs.c.stage.is_(None) | (jobs.c.stage != "record"))
            & ~_undelivered(jobs.c.request_id)
        )
        .values(state="done", done=jobs.c.total, finished_at=now, error=None)
    )
    return int(done.rowcount or 0)


def list_jobs(
    store: Store,
    *,
    state: str | None = None,
    request_id: str | None = None,
    limit: int = 50,
) -> list[JobRecord]:
    """Jobs, newest first; ``state`` "open" means queued or running."""
    q = sa.select(jobs).order_by(jobs.c.id.desc()).limit(limit)
    if state == "open":
        q = q.where(jobs.c.state.in_(("queued", "running")))
    elif state:
        q = q.where(jobs.c.state == state)
    if request_id:
        q = q.where(jobs.c.request_id == request_id)
    with store.read() as conn:
        return [_record(r) for r in conn.execute(q).all()]


def latest_for(store: Store, request_id: str) -> JobRecord | None:
    """The newest job about ``request_id`` (None: none was ever queued for it)."""
    found = list_jobs(store, request_id=request_id, limit=1)
    return found[0] if found else None
