"""Delivering notices after a release commits: each claimed once, sent, and marked once.

Delivery runs after the release transaction has committed and the checkpoint is published,
so the inclusion proof in a notice is against a signed tree that already holds the release.
Each notice carries the subject's path in the request's subjects tree, so the person can
check that their commitment is in the logged request.

Three rules make delivery safe to repeat after any crash:

- A notice is **claimed once**: an atomic conditional ``UPDATE … SET claimed_at`` decides
  which worker sends it. A claim whose worker died is freed by
  :meth:`Delivery.release_stale_claims` once older than the lease.
- A notice is **marked once**: marking is conditional on ``delivered_at IS NULL``, and with
  the database outbox the letter is written in the same transaction as the mark, only for
  the notices that transaction marked. So the outbox holds exactly one letter per notice,
  whatever workers raced or died.
- A notice has **one access code for its life** (:mod:`carewall.service.codes`), and what
  its letter said is pinned before it is handed to a channel that keeps no copy (SMTP), so
  a notice sent again after its worker died is the same letter with the same code: the
  letter the person already holds never stops working.
"""

from __future__ import annotations

import math
import smtplib
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from carewall.errors import CarewallError, InputError
from carewall.service import jobstore
from carewall.service import tables as t
from carewall.service.codes import hash_code
from carewall.service.logentries import rfc3339
from carewall.service.notices import OutboxChannel
from carewall.service.preparing import LetterRun, Prepared, commitments_of, subjects_facts

if TYPE_CHECKING:
    from carewall.service.reading import ReadMixin

__all__ = ["Delivery", "OnDelivered", "commitments_of", "hash_code", "subjects_facts"]

# Called inside the transaction that marks ``n`` notices delivered (a job counts its
# progress there, so progress and letters commit together); False: stop after this batch.
OnDelivered = Callable[[Connection, int], bool]


class Delivery:
    """Notice delivery for one service instance (a short-lived helper over its store)."""

    def __init__(self, svc: ReadMixin) -> None:
        self.svc = svc

    def pending(
        self,
        request_id: str | None = None,
        *,
        skip_open_jobs: bool = False,
        on_delivered: OnDelivered | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Deliver every notice that is due and unclaimed; returns how many THIS call sent.

        ``request_id`` limits delivery to one request's notices (a job's work);
        ``skip_open_jobs`` leaves alone the notices of requests whose job is queued or
        running (the periodic sweep: those are their job's to deliver). A sweep over
        every request also closes the jobs whose notices it finished.

        Safe in several threads or processes at once: each notice is first claimed by an
        atomic ``UPDATE … SET claimed_at … WHERE id IN (…) AND claimed_at IS NULL RETURNING
        id`` in its own short transaction, and only the worker whose update changed the row
        sends it. A claim whose worker died before delivering stays claimed until
        :meth:`release_stale_claims` frees it. Notices go in batches: for the database
        outbox, a whole batch of letters, their codes' hashes and their delivery marks
        commit in one transaction.
        """
        run = LetterRun(self.svc)
        batch = _OUTBOX_BATCH if isinstance(self.svc.channel, OutboxChannel) else _CHANNEL_BATCH
        query = _pending_query(request_id is not None, skip_open_jobs)
        sent = 0
        after = 0  # a cursor, so a notice someone else holds is never asked for twice
        while stop is None or not stop.is_set():
            with self.svc.store.read() as conn:
                params = {"after": after, "n": batch, "rid": request_id}
                ids = [int(i) for i in conn.execute(query, params).scalars()]
            if not ids:
                break
            after = ids[-1]
            mine = self.claim(ids)
            if mine:
                done, keep_going = self._deliver_batch(run, mine, on_delivered)
                sent += done
                if not keep_going:
                    break
        if request_id is None and not skip_open_jobs:
            self.close_finished_jobs()
        return sent

    def close_finished_jobs(self) -> int:
        """Mark done the open notices jobs whose notices are all delivered."""
        with self.svc._writer_turn, self.svc.store.write() as conn:
            return jobstore.close_finished(conn, rfc3339(self.svc.clock()))

    def release_stale_claims(self, older_than_seconds: float) -> int:
        """Free claims older than ``older_than_seconds`` on notices never marked delivered.

        The server does it at start and then periodically with its lease (a minute by
        default), after a worker died mid-delivery; the next delivery then sends them.
        Returns how many were freed. With the database outbox a letter and its delivery
        mark commit together, so a freed notice was never sent. With SMTP a worker that
        died after the mail server took the letter but before marking it leaves a claim
        that, once freed, sends the same letter (same code) a second time: a duplicate,
        never a letter whose code stops working.
        """
        if (
            not isinstance(older_than_seconds, int | float)
            or not math.isfinite(older_than_seconds)
            or older_than_seconds < 0
            or older_than_seconds > _MAX_CLAIM_AGE
        ):
            raise InputError(
                "must be a number of seconds, zero or more",
                field="older_than_seconds",
                fix="e.g. 3600 to free claims older than an hour (at most ten years)",
            )
        cutoff = rfc3339(self.svc.clock() - timedelta(seconds=older_than_seconds))
        with self.svc._writer_turn, self.svc.store.write() as conn:
            done = conn.execute(
                t.notices.update()
                .where(
                    t.notices.c.delivered_at.is_(None)
                    & (t.notices.c.status == "sent")
                    & t.notices.c.claimed_at.is_not(None)
                    & (t.notices.c.claimed_at <= cutoff)
                )
                .values(claimed_at=None)
            )
        return int(done.rowcount or 0)

    def claim(self, ids: Sequence[int]) -> list[int]:
        """The notices among ``ids`` this worker claimed, in its own short transaction."""
        now = rfc3339(self.svc.clock())
        with self.svc._writer_turn, self.svc.store.write() as conn:
            got = conn.execute(_CLAIM, {"ids": list(ids), "now": now}).scalars()
            return sorted(int(i) for i in got)

    def _unclaim(self, ids: Sequence[int]) -> None:
        """Give back claims on notices this worker never sent (best effort: it is failing)."""
        if not ids:
            return
        try:
            with self.svc._writer_turn, self.svc.store.write() as conn:
                conn.execute(
                    t.notices.update()
                    .where(t.notices.c.id.in_(list(ids)) & t.notices.c.delivered_at.is_(None))
                    .values(claimed_at=None)
                )
        except CarewallError:
            pass  # they stay claimed; release_stale_claims frees them later

    def _deliver_batch(
        self, run: LetterRun, ids: Sequence[int], on_delivered: OnDelivered | None
    ) -> tuple[int, bool]:
        """Send the claimed notices ``ids``; on failure, give back those not yet begun."""
        try:
            prepared = run.prepare(ids)
        except BaseException:
            self._unclaim(ids)
            raise
        if isinstance(self.svc.channel, OutboxChannel):
            try:
                return self._deliver_to_outbox(self.svc.channel, prepared, on_delivered)
            except BaseException:
                self._unclaim(ids)  # the transaction rolled back: nothing was sent
                raise
        sent, keep_going = 0, True
        for k, item in enumerate(prepared):
            try:
                marked, more = self._deliver_one(item, on_delivered)
            except BaseException:
                # the notice in hand may have left: it stays claimed; the rest never began
                self._unclaim([p.notice.id for p in prepared[k + 1 :]])
                raise
            sent += marked
            keep_going = keep_going and more
        return sent, keep_going

    def _deliver_to_outbox(
        self,
        channel: OutboxChannel,
        prepared: Sequence[Prepared],
        on_delivered: OnDelivered | None,
    ) -> tuple[int, bool]:
        now = rfc3339(self.svc.clock())
        with self.svc._writer_turn, self.svc.store.write() as conn:
            ids = [p.notice.id for p in prepared]
            # Only notices no one marked meanwhile get a letter (row-locked on PostgreSQL;
            # SQLite's writer lock already excludes every other writer).
            still = set(conn.execute(_STILL_UNDELIVERED, {"ids": ids}).scalars())
            todo = [p for p in prepared if p.notice.id in still]
            if todo:
                conn.execute(_SET_CODE, [p.code_row() for p in todo])
                conn.execute(_MARK_SENT, [p.mark_row(now, channel.name) for p in todo])
                channel.send_in(conn, [p.notice for p in todo])
            keep_going = on_delivered(conn, len(todo)) if on_delivered else True
        return len(todo), keep_going

    def _deliver_one(self, item: Prepared, on_delivered: OnDelivered | None) -> tuple[int, bool]:
        # The code's hash is stored, and what the letter says pinned, before the notice
        # leaves: the code works on arrival, and a second sending is the same letter.
        with self.svc._writer_turn, self.svc.store.write() as conn:
            pinned = conn.execute(_PIN, item.pin_row(rfc3339(self.svc.clock())))
            if pinned.rowcount != 1:
                return 0, True  # someone else delivered it meanwhile
            conn.execute(_SET_CODE, [item.code_row()])
        used = self.svc.channel.name
        try:
            self.svc.channel.send(item.notice)
        except (CarewallError, OSError, smtplib.SMTPException):
            # Never lose a notice: keep it for the holder to send by other means.
            OutboxChannel(self.svc.store).send(item.notice)
            used = "outbox"
        with self.svc._writer_turn, self.svc.store.write() as conn:
            marked = conn.execute(_MARK_SENT, item.mark_row(rfc3339(self.svc.clock()), used))
            n = 1 if marked.rowcount == 1 else 0
            keep_going = on_delivered(conn, n) if on_delivered else True
        return n, keep_going


def _pending_query(for_request: bool, skip_open_jobs: bool) -> sa.Select[Any]:
    """Due, unclaimed notices after the cursor, in id order (built once per variant)."""
    key = (for_request, skip_open_jobs)
    if key not in _PENDING:
        cond = (
            t.notices.c.delivered_at.is_(None)
            & (t.notices.c.status == "sent")
            & t.notices.c.claimed_at.is_(None)
            & (t.notices.c.id > sa.bindparam("after"))
        )
        if for_request:
            cond = cond & (t.notices.c.request_id == sa.bindparam("rid"))
        if skip_open_jobs:
            j = jobstore.jobs
            cond = cond & ~sa.exists().where(
                (j.c.request_id == t.notices.c.request_id) & j.c.state.in_(("queued", "running"))
            )
        _PENDING[key] = (
            sa.select(t.notices.c.id).where(cond).order_by(t.notices.c.id).limit(sa.bindparam("n"))
        )
    return _PENDING[key]


_PENDING: dict[tuple[bool, bool], sa.Select[Any]] = {}
# The claim: one conditional UPDATE over a batch of ids. A row is this worker's exactly when
# this statement changed it (RETURNING names those rows): another worker's committed claim
# fails the ``claimed_at IS NULL`` test, and on PostgreSQL a claim in flight holds the row
# lock until it commits, after which the condition is checked again and fails.
_CLAIM = (
    t.notices.update()
    .where(
        t.notices.c.id.in_(sa.bindparam("ids", expanding=True))
        & (t.notices.c.status == "sent")
        & t.notices.c.delivered_at.is_(None)
        & t.notices.c.claimed_at.is_(None)
    )
    .values(claimed_at=sa.bindparam("now"))
    .returning(t.notices.c.id)
)
_STILL_UNDELIVERED = (
    sa.select(t.notices.c.id)
    .where(
        t.notices.c.id.in_(sa.bindparam("ids", expanding=True)) & t.notices.c.delivered_at.is_(None)
    )
    .with_for_update()
)
_SET_CODE = (
    t.subjects.update()
    .where(
        (t.subjects.c.request_id == sa.bindparam("rid"))
        & (t.subjects.c.position == sa.bindparam("pos"))
    )
    .values(code_hash=sa.bindparam("digest"))
)
# Before a notice goes to a channel that keeps no copy: pin what its letter says, and renew
# the claim (the notice is in hand now, however long the rest of its batch took).
_PIN = (
    t.notices.update()
    .where((t.notices.c.id == sa.bindparam("nid")) & t.notices.c.delivered_at.is_(None))
    .values(
        body=sa.bindparam("data"),
        path=sa.bindparam("subject_path"),
        claimed_at=sa.bindparam("at"),
    )
)
_MARK_SENT = (
    t.notices.update()
    .where((t.notices.c.id == sa.bindparam("nid")) & t.notices.c.delivered_at.is_(None))
    .values(
        body=sa.bindparam("data"),
        path=sa.bindparam("subject_path"),
        delivered_at=sa.bindparam("at"),
        channel=sa.bindparam("used"),
    )
)
# Notices go out in batches: many per transaction into the outbox, fewer when each is
# mailed (a claimed batch is held by one worker until it is through).
_OUTBOX_BATCH = 500
_CHANNEL_BATCH = 20
_MAX_CLAIM_AGE = 10 * 366 * 86400
