"""Reading the service's records, and delivering notices (the two things done after commit).

Reads never take the writer's lock. Delivery runs after the release transaction has
committed and the checkpoint is published, so the inclusion proof in a notice is against a
signed tree that already holds the release.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import smtplib
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from carewall.errors import AuthError, CarewallError, InputError, NotFoundError
from carewall.ledger.checkpoint import parse_checkpoint
from carewall.ledger.note import parse_note
from carewall.ledger.subjects import SubjectTree, subjects_root
from carewall.service import tables as t
from carewall.service.logentries import rfc3339
from carewall.service.notices import Notice, OutboxChannel, render_notice
from carewall.service.records import (
    AppealRecord,
    EventRecord,
    HeldFacts,
    NoticeRecord,
    ReleaseGroup,
    ReleaseRecord,
    RequestRecord,
    RequestSummary,
    SubjectRecord,
    SubjectView,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from datetime import datetime

    from carewall.ledger import Ledger
    from carewall.policy import Register
    from carewall.service.notices import Channel
    from carewall.storage.db import Store

__all__ = ["ReadMixin"]

_WRONG_CODE = "the request id and access code do not match"


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _notice(r: Row[Any]) -> NoticeRecord:
    return NoticeRecord(
        id=r.id,
        request_id=r.request_id,
        subject=r.position,
        status=r.status,
        review_date=r.review_date,
        release_index=r.release_index,
        log_index=r.log_index,
        created_at=r.created_at,
        delivered_at=r.delivered_at,
        channel=r.channel,
        claimed_at=r.claimed_at,
    )


def _appeal(r: Row[Any] | None) -> AppealRecord | None:
    if r is None:
        return None
    return AppealRecord(
        by=r.by,
        grounds=r.grounds,
        prior_outcome=r.prior_outcome,
        lodged_at=r.lodged_at,
        reviewer=r.reviewer,
        decided_at=r.decided_at,
        result=r.result,
    )


class ReadMixin:
    """Read side of :class:`~carewall.service.facade.Service`."""

    if TYPE_CHECKING:
        store: Store
        ledger: Ledger
        channel: Channel
        clock: Callable[[], datetime]
        _writer_turn: AbstractContextManager[Any]

        def register(self, conn: Connection | None = None) -> Register: ...

    def _org_name(self, org_id: str) -> str:
        org = self.register().any_organisation(org_id)
        return org.name if org else org_id

    def get(self, id: str) -> RequestRecord:
        """The full DPO record of one request (holds personal data)."""
        with self.store.read() as conn:
            row = conn.execute(sa.select(t.requests).where(t.requests.c.id == id)).first()
            if row is None:
                raise NotFoundError("no such request", field="id", fix="check the request id")
            subjects = conn.execute(
                sa.select(t.subjects)
                .where(t.subjects.c.request_id == id)
                .order_by(t.subjects.c.position)
            ).all()
            events = conn.execute(
                sa.select(t.events).where(t.events.c.request_id == id).order_by(t.events.c.id)
            ).all()
            appeal = conn.execute(sa.select(t.appeals).where(t.appeals.c.request_id == id)).first()
            notices = conn.execute(
                sa.select(t.notices).where(t.notices.c.request_id == id).order_by(t.notices.c.id)
            ).all()
        doc = json.loads(row.document)
        release = None
        if row.release:
            rel = json.loads(row.release)
            release = ReleaseRecord(
                sent_at=rel["sent_at"],
                recipient=rel["recipient"],
                recipient_name=self._org_name(rel["recipient"]),
                reviewer=rel["reviewer"],
                policy=rel["policy"],
                categories=rel["categories"],
                groups=[ReleaseGroup(**g) for g in rel["groups"]],
            )
        return RequestRecord(
            id=row.id,
            reference=doc["reference"],
            holder=row.holder,
            requester=row.requester,
            officer=doc.get("officer"),
            authorised_by=doc.get("authorised_by"),
            purpose=row.purpose,
            legal_basis=row.legal_basis,
            other_bases=doc.get("other_bases") or [],
            offence=doc.get("offence"),
            court_order=doc.get("court_order"),
            necessity=doc.get("necessity"),
            prejudice=bool(doc.get("prejudice")),
            subjects=[
                SubjectRecord(
                    position=s.position,
                    ref=s.ref,
                    is_child=s.is_child,
                    is_victim_or_witness=s.is_victim_or_witness,
                    consent=bool(s.consent),
                    commitment=s.commitment,
                    has_contact=bool(s.contact),
                    held=None
                    if s.held_child is None
                    else HeldFacts(
                        is_child=bool(s.held_child),
                        is_victim_or_witness=bool(s.held_victim),
                        consent=bool(s.held_consent),
                    ),
                )
                for s in subjects
            ],
            categories=doc["categories"],
            onward_recipients=doc.get("onward_recipients") or [],
            received_at=row.received_at,
            stage=row.stage,
            outcome=row.outcome,
            decided_at=row.decided_at,
            decision=json.loads(row.decision),
            reviewer=row.reviewer,
            reviewed_at=row.reviewed_at,
            review_note=row.review_note,
            release=release,
            appeal=_appeal(appeal),
            notices=[_notice(n) for n in notices],
            withdrawn_by=row.withdrawn_by,
            withdrawn_at=row.withdrawn_at,
            events=[
                EventRecord(kind=e.kind, time=e.time, actor=e.actor, log_index=e.log_index)
                for e in events
            ],
        )

    def outcome_counts(self) -> dict[tuple[str, str], int]:
        """How many requests each requester has, by outcome: public, aggregate, one query."""
        q = sa.select(t.requests.c.requester, t.requests.c.outcome, sa.func.count()).group_by(
            t.requests.c.requester, t.requests.c.outcome
        )
        with self.store.read() as conn:
            return {(str(r), str(o)): int(n) for r, o, n in conn.execute(q)}

    def outcomes_by_function(self) -> Counter[tuple[str, str]]:
        """Requests by (requester function, outcome); retired requesters keep their function."""
        register = self.register()
        out: Counter[tuple[str, str]] = Counter()
        for (requester, outcome), n in self.outcome_counts().items():
            out[(register.function_of(requester) or "other_public_body", outcome)] += n
        return out

    def list_requests(
        self,
        holder: str | None = None,
        requester: str | None = None,
        state: str | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[RequestSummary]:
        """Requests, oldest first; ``state`` matches a stage or an outcome."""
        q = sa.select(t.requests).order_by(t.requests.c.received_at, t.requests.c.id)
        if holder:
            q = q.where(t.requests.c.holder == holder)
        if requester:
            q = q.where(t.requests.c.requester == requester)
        if state:
            q = q.where((t.requests.c.stage == state) | (t.requests.c.outcome == state))
        if limit is not None:
            q = q.limit(limit)
        if offset:
            q = q.offset(offset)
        with self.store.read() as conn:
            rows = conn.execute(q).all()
        out = []
        for r in rows:
            doc = json.loads(r.document)
            out.append(
                RequestSummary(
                    id=r.id,
                    holder=r.holder,
                    requester=r.requester,
                    purpose=r.purpose,
                    legal_basis=r.legal_basis,
                    stage=r.stage,
                    outcome=r.outcome,
                    received_at=r.received_at,
                    subjects=len(doc["subjects"]),
                    categories=doc["categories"],
                )
            )
        return out

    def queue(self, holder: str) -> list[RequestSummary]:
        """Requests at ``holder`` that the policy sent for review and no one has reviewed."""
        return [
            r for r in self.list_requests(holder=holder, state="decided") if r.outcome == "review"
        ]

    def notices(
        self,
        request_id: str | None = None,
        status: str | None = None,
        *,
        due_by: str | None = None,
        undelivered: bool = False,
    ) -> list[NoticeRecord]:
        """Notices; ``due_by`` (ISO date) selects deferred notices whose review date has come."""
        q = sa.select(t.notices).order_by(t.notices.c.id)
        if request_id:
            q = q.where(t.notices.c.request_id == request_id)
        if status:
            q = q.where(t.notices.c.status == status)
        if due_by:
            q = q.where((t.notices.c.status == "deferred") & (t.notices.c.review_date <= due_by))
        if undelivered:
            q = q.where((t.notices.c.status == "sent") & t.notices.c.delivered_at.is_(None))
        with self.store.read() as conn:
            return [_notice(r) for r in conn.execute(q).all()]

    def outbox(self, notice_id: int | None = None) -> list[dict[str, Any]]:
        """Messages waiting in the database outbox (they hold access codes: keep private)."""
        q = sa.select(t.outbox).order_by(t.outbox.c.id)
        if notice_id is not None:
            q = q.where(t.outbox.c.notice_id == notice_id)
        with self.store.read() as conn:
            return [dict(r._mapping) for r in conn.execute(q).all()]

    # ----- the subject's side ----------------------------------------------------------

    def _subject_position(self, request_id: str, code: str) -> int:
        """The position of the subject whose access code is ``code``, or AuthError (401).

        Looked up by the code's SHA-256 in SQL, so a request about 100,000 people is not
        read whole for each view. Comparing hashes of a 128-bit random code by equality
        leaks nothing usable: timing could at most reveal a prefix of a guess's hash.
        """
        if not isinstance(code, str) or not code:
            raise AuthError(_WRONG_CODE, field="code")
        digest = _hash_code(code)
        with self.store.read() as conn:
            found = conn.execute(_BY_CODE, {"rid": request_id, "digest": digest}).first()
        if found is None or not hmac.compare_digest(str(found.code_hash), digest):
            raise AuthError(_WRONG_CODE, field="code", fix="use the code from your notice")
        return int(found.position)

    def subject_view(self, request_id: str, code: str) -> SubjectView:
        """What the subject holding ``code`` may see: what was released, to whom, the proofs.

        Reads only this subject's rows (never the whole request), so a view of a request
        about 100,000 people costs about what a view of one about a single person does.
        """
        position = self._subject_position(request_id, code)
        with self.store.read() as conn:
            req = conn.execute(sa.select(t.requests).where(t.requests.c.id == request_id)).one()
            subj = conn.execute(
                sa.select(t.subjects.c.commitment).where(
                    (t.subjects.c.request_id == request_id) & (t.subjects.c.position == position)
                )
            ).one()
            notice = conn.execute(
                sa.select(t.notices.c.status, t.notices.c.path)
                .where((t.notices.c.request_id == request_id) & (t.notices.c.position == position))
                .order_by(t.notices.c.id.desc())
                .limit(1)
            ).first()
            appeal = conn.execute(
                sa.select(t.appeals).where(t.appeals.c.request_id == request_id)
            ).first()
            count, root, request_index = _subjects_facts(conn, req)
            path = None if notice is None or not notice.path else json.loads(notice.path)
            if path is None:
                path = SubjectTree(_commitments(conn, request_id)).proof(position)
        release = json.loads(req.release) if req.release else None
        group = None
        if release:
            group = next((g for g in release["groups"] if position in g["subjects"]), None)
        proof: list[str] = []
        size: int | None = None
        note: str | None = None
        if group is not None:
            size, note = self._signed_tree(group["log_index"])
            proof = [h.hex() for h in self.ledger.inclusion_proof(group["log_index"], size)]
        return SubjectView(
            request_id=req.id,
            subject=position,
            holder=req.holder,
            holder_name=self._org_name(req.holder),
            recipient=release["recipient"] if release else None,
            recipient_name=self._org_name(release["recipient"]) if release else None,
            purpose=req.purpose,
            legal_basis=req.legal_basis,
            court_order=bool(json.loads(req.document).get("court_order")),
            categories=group["categories"] if group else [],
            released_at=release["sent_at"] if release else None,
            stage=req.stage,
            outcome=req.outcome,
            notice_status=notice.status if notice else None,
            release_index=group["log_index"] if group else None,
            tree_size=size,
            inclusion_proof=proof,
            checkpoint=note,
            commitment=subj.commitment,
            can_appeal=req.stage == "reviewed" and req.outcome == "released",
            appeal=_appeal(appeal),
            request_index=request_index,
            subjects_root=root,
            subject_count=count,
            subject_path=path,
        )

    def _signed_tree(self, index: int) -> tuple[int, str]:
        """The newest signed checkpoint as (size, note), signing one if it misses ``index``.

        A subject's proof is against a checkpoint they can check with the log's public key,
        never against an unsigned size.
        """
        note = self.ledger.checkpoint()
        size = parse_checkpoint(parse_note(note).text).size
        if size <= index and self.ledger.writable:
            note = self.ledger.publish()
            size = parse_checkpoint(parse_note(note).text).size
        return size, note

    # ----- delivery --------------------------------------------------------------------

    def deliver_pending(self) -> int:
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
        run = _DeliveryRun(self)
        batch = _OUTBOX_BATCH if isinstance(self.channel, OutboxChannel) else _CHANNEL_BATCH
        sent = 0
        after = 0  # a cursor, so a notice someone else holds is never asked for twice
        while True:
            with self.store.read() as conn:
                ids = [
                    int(i) for i in conn.execute(_PENDING, {"after": after, "n": batch}).scalars()
                ]
            if not ids:
                return sent
            after = ids[-1]
            mine = self._claim(ids)
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
        cutoff = rfc3339(self.clock() - timedelta(seconds=older_than_seconds))
        with self.store.write() as conn:
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

    def _claim(self, ids: Sequence[int]) -> list[int]:
        """The notices among ``ids`` this worker claimed, in its own short transaction."""
        now = rfc3339(self.clock())
        with self._writer_turn, self.store.write() as conn:
            got = conn.execute(_CLAIM, {"ids": list(ids), "now": now}).scalars()
            return sorted(int(i) for i in got)

    def _unclaim(self, ids: Sequence[int]) -> None:
        """Give back claims on notices this worker never sent (best effort: it is failing)."""
        if not ids:
            return
        try:
            with self.store.write() as conn:
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
        if isinstance(self.channel, OutboxChannel):
            try:
                self._deliver_to_outbox(self.channel, prepared)
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
        now = rfc3339(self.clock())
        with self._writer_turn, self.store.write() as conn:
            conn.execute(_SET_CODE, [p.code_row() for p in prepared])
            conn.execute(_MARK_SENT, [p.mark_row(now, channel.name) for p in prepared])
            channel.send_in(conn, [p.notice for p in prepared])

    def _deliver_one(self, item: _Prepared) -> None:
        # The code's hash is stored before the notice leaves, so the code works on arrival.
        with self._writer_turn, self.store.write() as conn:
            conn.execute(_SET_CODE, [item.code_row()])
        used = self.channel.name
        try:
            self.channel.send(item.notice)
        except (CarewallError, OSError, smtplib.SMTPException):
            # Never lose a notice: keep it for the holder to send by other means.
            OutboxChannel(self.store).send(item.notice)
            used = "outbox"
        with self._writer_turn, self.store.write() as conn:
            conn.execute(_MARK_SENT, [item.mark_row(rfc3339(self.clock()), used)])


# Built once so their compiled forms are reused for every notice.
_BY_CODE = sa.select(t.subjects.c.position, t.subjects.c.code_hash).where(
    (t.subjects.c.request_id == sa.bindparam("rid"))
    & (t.subjects.c.code_hash == sa.bindparam("digest"))
)
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
        commitments = _commitments(conn, request_id)
        count, root, request_index = _subjects_facts(conn, req, commitments)
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
            }
            code = secrets.token_urlsafe(16)
            subject_line, body = render_notice({**data, "code": code})
            notice = Notice(int(r.id), r.request_id, r.contact, subject_line, body, data)
            out.append(_Prepared(notice, int(r.position), _hash_code(code), path))
        return out


def _commitments(conn: Connection, request_id: str) -> list[str]:
    """The request's subjects' commitments, in request order (the subjects tree's leaves)."""
    return [
        str(c)
        for c in conn.execute(
            sa.select(t.subjects.c.commitment)
            .where(t.subjects.c.request_id == request_id)
            .order_by(t.subjects.c.position)
        ).scalars()
    ]


def _subjects_facts(
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
        commitments = _commitments(conn, req.id) if commitments is None else commitments
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
