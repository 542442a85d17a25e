"""Long work off the request path: a release's notices written and delivered by a job.

A release (or a lifted deferral) is recorded at once, in one transaction whose work does
not grow with the number of subjects: its review, release or deferral entries, its plan,
and a job (:mod:`carewall.service.jobstore`). The per-subject work is the job's: first
writing each subject's notice row and ``notice`` log entry in batches
(:mod:`carewall.service.recording`), then each letter's proofs, code and delivery. So a
reviewer's call returns as soon as the decision is durable. Who runs a job:

- the caller itself, at once, when the job is small (at most ``inline_limit`` notices) or
  no background worker is running (the CLI, a script): the job is queued already claimed
  by that caller, so the reply shows the notices sent, as before;
- otherwise the server's background worker (:func:`sweep_once`, every second), or a
  ``carewall jobs run`` process. Each job is claimed once across processes; a worker that
  dies leaves its job and notice claims to be taken over when the lease runs out.

The same sweep delivers any notice left undelivered without an open job (after a crash,
or from before jobs existed), and frees notice claims older than the lease.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from carewall.errors import CarewallError, InputError
from carewall.service import jobstore
from carewall.service import tables as t
from carewall.service.delivery import Delivery
from carewall.service.jobstore import NOTICES, JobRecord, QueuedJob
from carewall.service.logentries import rfc3339
from carewall.service.recording import record_notices

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row

    from carewall.service.facade import Service

__all__ = [
    "DEFAULT_LEASE",
    "INLINE_LIMIT",
    "JobPolicy",
    "Sweep",
    "after_commit",
    "drain",
    "queue_notices",
    "record_queued",
    "run_claimed",
    "startup_sweep",
    "sweep_once",
]

_log = logging.getLogger("carewall.jobs")

DEFAULT_LEASE = 60.0  # seconds without a heartbeat after which a worker is taken as dead
INLINE_LIMIT = 100  # notices a caller writes and delivers itself when a background worker runs
LEASE_ENV = "CAREWALL_WORKER_LEASE"

# Progress callback for long runs: (job, notices delivered so far by this run).
OnProgress = Callable[[JobRecord, int], None]


def _lease_from_env() -> float:
    raw = os.environ.get(LEASE_ENV, "").strip()
    if not raw:
        return DEFAULT_LEASE
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 1 <= value <= 86400:
        raise InputError(
            "must be a number of seconds from 1 to 86400",
            field=LEASE_ENV,
            fix=f"e.g. {int(DEFAULT_LEASE)}, or leave it unset",
        )
    return value


def _worker_name() -> str:
    """This worker, as recorded on the jobs it holds (host, process, and a random tag)."""
    host = socket.gethostname()[:40] or "host"
    return f"{host}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass
class JobPolicy:
    """How one :class:`Service` runs jobs (``svc.job_policy``)."""

    lease: float = field(default_factory=_lease_from_env)
    inline_limit: int = INLINE_LIMIT
    background: bool = False  # set while the server's background worker runs
    tick: float = 1.0  # seconds between the background worker's sweeps
    worker: str = field(default_factory=_worker_name)
    stop: threading.Event = field(default_factory=threading.Event)


class _Stopped(Exception):
    """The recording stage stopped between batches because the worker is stopping."""


@dataclass(frozen=True)
class Sweep:
    """What one sweep did: claims freed, notices sent, jobs finished."""

    freed: int = 0
    sent: int = 0
    jobs: int = 0


def queue_notices(
    svc: Service,
    conn: Connection,
    request_id: str,
    now: str,
    *,
    total: int | None = None,
    record: bool = False,
) -> QueuedJob:
    """Queue the job for ``request_id``'s notices, in the caller's transaction.

    ``record``: the job first writes the notices (a release, or a lifted deferral, of
    ``total`` subjects; see :mod:`carewall.service.recording`); otherwise it delivers the
    notices already written. Claimed at once for the caller when it is to run the job
    itself (see the module's docstring); with ``svc.auto_publish`` off (bulk loaders) it is
    only queued.
    """
    if total is None:
        total = int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    (t.notices.c.request_id == request_id)
                    & (t.notices.c.status == "sent")
                    & t.notices.c.delivered_at.is_(None)
                )
            ).scalar_one()
        )
    pol = svc.job_policy
    inline = svc.auto_publish and (not pol.background or total <= pol.inline_limit)
    return jobstore.enqueue(
        conn, NOTICES, request_id, total, now, pol.worker if inline else None, record=record
    )


def after_commit(svc: Service, job: QueuedJob | None) -> None:
    """Run a job its caller queued claimed; if that fails, the job waits for a worker.

    Under a server (a background worker runs) the caller runs just its own small job.
    Without one (the CLI, a script) it delivers everything due, as a sweep: its own
    job's notices and any left by an earlier run that died, then closes its job.

    The decision is already committed: a failure here never undoes it or fails the call.
    Only the error's kind is logged (a database error's text can hold personal data).
    """
    if job is None or job.worker is None:
        return
    try:
        if svc.job_policy.background:
            run_claimed(svc, job.id, job.worker)
            return
        if record_notices(svc, job.id, job.worker) != "done":
            return
        svc.deliver_pending()
        with svc._writer_turn, svc.store.write() as conn:
            jobstore.finish(conn, job.id, job.worker, svc.clock(), svc.job_policy.lease)
    except Exception as e:
        code = e.code if isinstance(e, CarewallError) else type(e).__name__
        _log.warning(
            "job %d not finished (%s): a server's worker or `carewall jobs run` finishes it",
            job.id,
            code,
        )


def run_claimed(
    svc: Service,
    job_id: int,
    worker: str,
    *,
    on_progress: OnProgress | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run job ``job_id``, which ``worker`` holds; returns how many notices it sent.

    Progress and the heartbeat are written with each batch of letters. The job ends done,
    or is given back: when it fails, when ``stop`` is set, or when other workers still hold
    some of its notices (it is tried again once their claims could have run out).
    """
    with svc.store.read() as conn:
        row = conn.execute(jobstore.JOB, {"job": job_id}).one()
    return _run(svc, row, worker, on_progress, stop)[0]


def _run(
    svc: Service,
    row: Row[Any],
    worker: str,
    on_progress: OnProgress | None,
    stop: threading.Event | None,
) -> tuple[int, bool]:
    """:func:`run_claimed` on the job's ``row`` as committed when ``worker`` took it; also
    says whether the job ended done (it can never be claimed again)."""
    job_id = int(row.id)
    record = jobstore._record(row)
    sent = 0

    def delivered(conn: Connection, n: int) -> bool:
        nonlocal sent
        sent += n
        if on_progress is not None:
            on_progress(record, sent)
        return jobstore.progress(conn, job_id, worker, n, rfc3339(svc.clock()))

    def recorded(n: int, total: int) -> None:
        if on_progress is not None:
            on_progress(record.model_copy(update={"stage": "record"}), n)

    try:
        stage: str = "done"
        if row.stage == "record" or row.worker != worker or row.state != "running":
            # its notices are still to be written (or it is not this worker's: "lost");
            # a job past that stage never goes back to it
            stage = record_notices(svc, job_id, worker, on_recorded=recorded, stop=stop)
        if stage == "lost":
            return 0, False
        if stage == "stopped":
            raise _Stopped
        Delivery(svc).pending(row.request_id, on_delivered=delivered, stop=stop)
    except BaseException as e:
        if isinstance(e, _Stopped):  # asked to stop between batches: another run goes on
            code, now = "stopped", svc.clock()
            retry = rfc3339(now)
            with svc._writer_turn, svc.store.write() as conn:
                jobstore.give_back(conn, job_id, worker, retry, None, retry)
            return sent, False
        code = e.code if isinstance(e, CarewallError) else type(e).__name__
        now = svc.clock()
        retry = rfc3339(now + timedelta(seconds=svc.job_policy.lease))
        try:
            with svc._writer_turn, svc.store.write() as conn:
                jobstore.give_back(conn, job_id, worker, rfc3339(now), code, retry)
        except CarewallError:
            pass  # the lease runs out and another worker takes it over
        raise
    with svc._writer_turn, svc.store.write() as conn:
        state = jobstore.finish(conn, job_id, worker, svc.clock(), svc.job_policy.lease)
    return sent, state == "done"


def record_queued(svc: Service) -> int:
    """Write the notices of every queued job that has not written them yet, now.

    Each job goes back to the queue afterwards, for a worker to deliver its letters. A bulk
    loader (the demo's year) calls this as it goes, so that each notice is logged at the
    time of its release, as a server's worker would log it. Returns the jobs recorded.
    """
    pol = svc.job_policy
    recorded = 0
    while True:
        with svc.store.read() as conn:  # nothing to hold: no writer transaction to find that
            if not jobstore.any_to_record(conn):
                return recorded
        now = rfc3339(svc.clock())
        with svc._writer_turn, svc.store.write() as conn:
            job_id = jobstore.hold_for_recording(conn, pol.worker, now)
        if job_id is None:
            return recorded
        stage = record_notices(svc, job_id, pol.worker)
        with svc._writer_turn, svc.store.write() as conn:
            jobstore.give_back(conn, job_id, pol.worker, rfc3339(svc.clock()), None)
        if stage != "done":
            return recorded
        recorded += 1


def _claim(svc: Service, *, ignore_backoff: bool, skip: set[int]) -> Row[Any] | None:
    """The job this worker claimed (its row as the claim committed it), or None."""
    pol = svc.job_policy
    with svc._writer_turn, svc.store.write() as conn:
        return jobstore.claim_next(
            conn, pol.worker, svc.clock(), pol.lease, ignore_backoff=ignore_backoff, skip=skip
        )


def drain(
    svc: Service,
    *,
    ignore_backoff: bool = True,
    on_progress: OnProgress | None = None,
    stop: threading.Event | None = None,
) -> Sweep:
    """Run every job this worker can claim, each at most once, until none is left.

    A job given back unfinished (other workers still hold some of its notices) is not
    taken again in the same round: it waits for its ``run_after``. Only those are named to
    the claim as jobs to skip: a job that ended done can never be claimed again, so the
    claim's statement stays small however many jobs a round runs.
    """
    sent = 0
    ran: set[int] = set()
    unfinished: set[int] = set()
    while stop is None or not stop.is_set():
        row = _claim(svc, ignore_backoff=ignore_backoff, skip=unfinished)
        if row is None:
            break
        job_id = int(row.id)
        ran.add(job_id)
        n, done = _run(svc, row, svc.job_policy.worker, on_progress, stop)
        sent += n
        if not done:
            unfinished.add(job_id)
    return Sweep(sent=sent, jobs=len(ran))


def _anything_to_do(svc: Service) -> tuple[bool, bool]:
    """(a claim may be stale, a job may be claimable): two reads, no writer lock."""
    now = svc.clock()
    lease = svc.job_policy.lease
    stale = rfc3339(now - timedelta(seconds=lease))
    j = jobstore.jobs
    with svc.store.read() as conn:
        claims = conn.execute(
            sa.select(t.notices.c.id)
            .where(
                t.notices.c.delivered_at.is_(None)
                & t.notices.c.claimed_at.is_not(None)
                & (t.notices.c.claimed_at <= stale)
            )
            .limit(1)
        ).first()
        work = conn.execute(
            sa.select(j.c.id).where(jobstore._claimable(rfc3339(now), stale, False)).limit(1)
        ).first()
    return claims is not None, work is not None


def sweep_once(svc: Service, *, on_progress: OnProgress | None = None) -> Sweep:
    """One round of the background worker: free stale claims, run jobs, send orphans."""
    pol = svc.job_policy
    stale, claimable = _anything_to_do(svc)
    delivery = Delivery(svc)
    freed = delivery.release_stale_claims(pol.lease) if stale else 0
    ran = Sweep()
    if claimable:
        ran = drain(svc, ignore_backoff=False, on_progress=on_progress, stop=pol.stop)
    orphans = 0
    if not pol.stop.is_set():
        orphans = delivery.pending(skip_open_jobs=True, stop=pol.stop)
    return Sweep(freed=freed, sent=ran.sent + orphans, jobs=ran.jobs)


def startup_sweep(svc: Service) -> tuple[Sweep, int]:
    """At start: free claims older than the lease, and send a small backlog at once.

    Returns what was done and how many due notices were left to the background worker
    (a large backlog is not sent before the server starts answering).
    """
    pol = svc.job_policy
    freed = Delivery(svc).release_stale_claims(pol.lease)
    with svc.store.read() as conn:
        due = int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    t.notices.c.delivered_at.is_(None) & (t.notices.c.status == "sent")
                )
            ).scalar_one()
        )
    if due > pol.inline_limit:
        return Sweep(freed=freed), due
    sent = svc.deliver_pending()
    return Sweep(freed=freed, sent=sent), max(0, due - sent)
