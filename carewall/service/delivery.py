"""Delivering notices after a release commits: each claimed once, sent, and marked.

Delivery runs after the release transaction has committed and the checkpoint is published,
so the inclusion proof in a notice is against a signed tree that already holds the release.
Each notice carries the subject's path in the request's subjects tree, so the person can
check that their commitment is in the logged request.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import smtplib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from carewall.errors import CarewallError, InputError
from carewall.ledger.subjects import SubjectTree, subjects_root
from carewall.service import tables as t
from carewall.service.logentries import rfc3339
from carewall.service.notices import Notice, OutboxChannel, render_notice

if TYPE_CHECKING:
    from carewall.service.reading import ReadMixin

__all__ = ["Delivery", "commitments_of", "hash_code", "subjects_facts"]


def hash_code(code: str) -> str:
    """The stored form of a subject's access code (the code itself is only in the letter)."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


class Delivery:
    """Notice delivery for one service instance (a short-lived helper over its store)."""

    def __init__(self, svc: ReadMixin) -> None:
        self.svc = svc

    def pending(self) -> int:
        """Deliver every notice that is due and unclaimed; returns how many THIS call sent.

        Safe in several threads or processes at once: each notice is first claimed by an
        atomic ``UPDATE … SET claimed_at … WHERE id IN (…) AND claimed_at IS NULL RETURNING
        id`` in its own short transaction, and only the worker whose update changed the row
        generates the access code and sends. So no one gets two letters, or a second code
        that voids the code in their first letter. A claim whose worker died before
        delivering stays claimed until :meth:`release_stale_claims` frees it.

        Notices go in batches: for the database outbox, a whole batch of letters, their
        codes' hashes and their delivery marks commit in one transaction.
        """
        run = _DeliveryRun(self.svc)
        batch = _OUTBOX_BATCH if isinstance(self.svc.channel, OutboxChannel) else _CHANNEL_BATCH
        sent = 0
        after = 0  # a cursor, so a notice someone else holds is never asked for twice
        while True:
            with self.svc.store.read() as conn:
                ids = [
                    int(i) for i in conn.execute(_PENDING, {"after": after, "n": batch}).scalars()
                ]
            if not ids:
                return sent
            after = ids[-1]
            mine = self.claim(ids)
            if mine:
                sent += self._deliver_batch(run, mine)

    def release_stale_claims(self, older_than_seconds: float) -> int:
        """Free claims older than ``older_than_seconds`` on notices never marked delivered.

        For the operator, or a start-up (``carewall serve`` does it with an hour), after a
        worker died mid-delivery; the next :meth:`deliver_pending` then sends them with a
        fresh code. Returns how many were freed. With the database outbox a letter and its
        delivery mark commit together, so a freed notice was never sent. With SMTP a worker
        that died after the mail server took the letter but before marking it leaves a
        claim that, once freed, sends a second letter whose code replaces the first: use an
        age well past any delivery in progress.
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
        with self.svc.store.write() as conn:
            done = conn.execute(
                t.notices.update()
                .where(
                    (t.notices.c.status == "sent")
                    & t.notices.c.delivered_at.is_(None)
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
            with self.svc.store.write() as conn:
                conn.execute(
                    t.notices.update()
                    .where(t.notices.c.id.in_(list(ids)) & t.notices.c.delivered_at.is_(None))
                    .values(claimed_at=None)
                )
        except CarewallError:
            pass  # they stay claimed; release_stale_claims frees them later

    def _deliver_batch(self, run: _DeliveryRun, ids: Sequence[int]) -> int:
        """Send the claimed notices ``ids``; on failure, give back those not yet begun."""
        try:
            prepared = run.prepare(ids)
        except BaseException:
            self._unclaim(ids)
            raise
        if isinstance(self.svc.channel, OutboxChannel):
            try:
                self._deliver_to_outbox(self.svc.channel, prepared)
            except BaseException:
                self._unclaim(ids)  # the transaction rolled back: nothing was sent
                raise
            return len(prepared)
        for k, item in enumerate(prepared):
            try:
                self._deliver_one(item)
            except BaseException:
                # the notice in hand may have left: it stays claimed; the rest never began
                self._unclaim([p.notice.id for p in prepared[k + 1 :]])
                raise
        return len(prepared)

    def _deliver_to_outbox(self, channel: OutboxChannel, prepared: Sequence[_Prepared]) -> None:
        now = rfc3339(self.svc.clock())
        with self.svc._writer_turn, self.svc.store.write() as conn:
            conn.execute(_SET_CODE, [p.code_row() for p in prepared])
            conn.execute(_MARK_SENT, [p.mark_row(now, channel.name) for p in prepared])
            channel.send_in(conn, [p.notice for p in prepared])

    def _deliver_one(self, item: _Prepared) -> None:
        # The code's hash is stored before the notice leaves, so the code works on arrival.
        with self.svc._writer_turn, self.svc.store.write() as conn:
            conn.execute(_SET_CODE, [item.code_row()])
        used = self.svc.channel.name
        try:
            self.svc.channel.send(item.notice)
        except (CarewallError, OSError, smtplib.SMTPException):
            # Never lose a notice: keep it for the holder to send by other means.
            OutboxChannel(self.svc.store).send(item.notice)
            used = "outbox"
        with self.svc._writer_turn, self.svc.store.write() as conn:
            conn.execute(_MARK_SENT, [item.mark_row(rfc3339(self.svc.clock()), used)])


# Built once so their compiled forms are reused for every notice.
_PENDING = (
    sa.select(t.notices.c.id)
    .where(
        (t.notices.c.status == "sent")
        & t.notices.c.delivered_at.is_(None)
        & t.notices.c.claimed_at.is_(None)
        & (t.notices.c.id > sa.bindparam("after"))
    )
    .order_by(t.notices.c.id)
    .limit(sa.bindparam("n"))
)
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
_SET_CODE = (
    t.subjects.update()
    .where(
        (t.subjects.c.request_id == sa.bindparam("rid"))
        & (t.subjects.c.position == sa.bindparam("pos"))
    )
    .values(code_hash=sa.bindparam("digest"))
)
_MARK_SENT = (
    t.notices.update()
    .where(t.notices.c.id == sa.bindparam("nid"))
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
# Subject trees kept per delivery run: notices are claimed in id order, and a release
# inserts its notices together, so a run works through one request at a time.
_TREES_KEPT = 4
_MAX_CLAIM_AGE = 10 * 366 * 86400


@dataclass(frozen=True)
class _Prepared:
    """One claimed notice, rendered with its fresh code (holds the code: never log it)."""

    notice: Notice
    position: int
    digest: str
    path: list[str]

    def code_row(self) -> dict[str, Any]:
        return {"rid": self.notice.request_id, "pos": self.position, "digest": self.digest}

    def mark_row(self, at: str, used: str) -> dict[str, Any]:
        # svc_notices.body keeps what the notice said without its code (and without the
        # path, which has its own column, svc_notices.path)
        data = {k: v for k, v in self.notice.data.items() if k != "subject_path"}
        return {
            "nid": self.notice.id,
            "data": json.dumps(data),
            "subject_path": json.dumps(self.path),
            "at": at,
            "used": used,
        }


@dataclass
class _RequestFacts:
    """What every notice about one request shares, and its subjects tree (built once)."""

    common: dict[str, Any]
    groups: dict[int, list[str]]  # release log index -> categories released
    tree: SubjectTree
    root: str
    count: int
    request_index: int | None


class _DeliveryRun:
    """Caches for one :meth:`ReadMixin.deliver_pending` run: the signed tree, the release
    proofs and, per request, the subjects tree (one ``SubjectTree`` per request, never one
    per notice, so a request about 100,000 people is delivered in seconds, not hours)."""

    def __init__(self, svc: ReadMixin) -> None:
        self.svc = svc
        self.requests: OrderedDict[str, _RequestFacts] = OrderedDict()
        self.signed: tuple[int, str, str] | None = None  # size, note, root hex
        self.proofs: dict[int, list[str]] = {}

    def _tree(self, index: int) -> tuple[int, str, str]:
        if self.signed is None or self.signed[0] <= index:
            size, note = self.svc._signed_tree(index)
            self.signed = (size, note, self.svc.ledger.root(size).hex())
            self.proofs.clear()
        return self.signed

    def _proof(self, index: int, size: int) -> list[str]:
        if index not in self.proofs:
            self.proofs[index] = [h.hex() for h in self.svc.ledger.inclusion_proof(index, size)]
        return self.proofs[index]

    def _request(self, conn: Connection, request_id: str) -> _RequestFacts:
        facts = self.requests.get(request_id)
        if facts is not None:
            self.requests.move_to_end(request_id)
            return facts
        req = conn.execute(sa.select(t.requests).where(t.requests.c.id == request_id)).one()
        rel = json.loads(req.release)
        commitments = commitments_of(conn, request_id)
        count, root, request_index = subjects_facts(conn, req, commitments)
        facts = _RequestFacts(
            common={
                "request_id": req.id,
                "holder": req.holder,
                "holder_name": self.svc._org_name(req.holder),
                "recipient": rel["recipient"],
                "recipient_name": self.svc._org_name(rel["recipient"]),
                "purpose": req.purpose,
                "legal_basis": req.legal_basis,
                "court_order": bool(json.loads(req.document).get("court_order")),
                "released_at": rel["sent_at"],
            },
            groups={int(g["log_index"]): list(g["categories"]) for g in rel["groups"]},
            tree=SubjectTree(commitments),
            root=root,
            count=count,
            request_index=request_index,
        )
        self.requests[request_id] = facts
        while len(self.requests) > _TREES_KEPT:
            self.requests.popitem(last=False)
        return facts

    def prepare(self, ids: Sequence[int]) -> list[_Prepared]:
        """Render each claimed notice with a fresh access code (generated only now)."""
        with self.svc.store.read() as conn:
            rows = conn.execute(
                sa.select(
                    t.notices.c.id,
                    t.notices.c.request_id,
                    t.notices.c.position,
                    t.notices.c.release_index,
                    t.subjects.c.commitment,
                    t.subjects.c.contact,
                )
                .join(
                    t.subjects,
                    (t.subjects.c.request_id == t.notices.c.request_id)
                    & (t.subjects.c.position == t.notices.c.position),
                )
                .where(t.notices.c.id.in_(list(ids)))
                .order_by(t.notices.c.id)
            ).all()
            facts = [self._request(conn, r.request_id) for r in rows]
        out = []
        for r, f in zip(rows, facts, strict=True):
            index = int(r.release_index)
            size, note, root = self._tree(index)
            path = f.tree.proof(int(r.position))
            data: dict[str, Any] = {
                **f.common,
                "categories": f.groups[index],
                "release_index": index,
                "tree_size": size,
                "root": root,
                "inclusion_proof": self._proof(index, size),
                "commitment": r.commitment,
                "checkpoint": note,
                "request_index": f.request_index,
                "subjects_root": f.root,
                "subject_position": int(r.position),
                "subject_count": f.count,
                "subject_path": path,
                # the letter names the page to see this at (set by `carewall serve`)
                "public_url": self.svc.public_url,
            }
            code = secrets.token_urlsafe(16)
            subject_line, body = render_notice({**data, "code": code})
            notice = Notice(int(r.id), r.request_id, r.contact, subject_line, body, data)
            out.append(_Prepared(notice, int(r.position), hash_code(code), path))
        return out


def commitments_of(conn: Connection, request_id: str) -> list[str]:
    """The request's subjects' commitments, in request order (the subjects tree's leaves)."""
    return [
        str(c)
        for c in conn.execute(
            sa.select(t.subjects.c.commitment)
            .where(t.subjects.c.request_id == request_id)
            .order_by(t.subjects.c.position)
        ).scalars()
    ]


def subjects_facts(
    conn: Connection, req: Row[Any], commitments: Sequence[str] | None = None
) -> tuple[int, str, int | None]:
    """(subject count, subjects root, the request entry's log index) of request ``req``."""
    if commitments is None and req.subjects_root:
        count = int(
            conn.execute(
                sa.select(sa.func.count()).where(t.subjects.c.request_id == req.id)
            ).scalar_one()
        )
        root = str(req.subjects_root)
    else:
        commitments = commitments_of(conn, req.id) if commitments is None else commitments
        count = len(commitments)
        # a request stored before the root was kept has it recomputed from its rows
        root = str(req.subjects_root or subjects_root(commitments))
    index = conn.execute(
        sa.select(t.events.c.log_index)
        .where((t.events.c.request_id == req.id) & (t.events.c.kind == "received"))
        .order_by(t.events.c.id)
        .limit(1)
    ).scalar()
    return count, root, None if index is None else int(index)
