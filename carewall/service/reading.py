"""Reading the service's records, and delivering notices (the two things done after commit).

Reads never take the writer's lock. Delivery runs after the release transaction has
committed and the checkpoint is published, so the inclusion proof in a notice is against a
signed tree that already holds the release.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import smtplib
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from carewall.errors import AuthError, CarewallError, InputError, NotFoundError
from carewall.ledger.checkpoint import parse_checkpoint
from carewall.ledger.note import parse_note
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

        def register(self, conn: Connection | None = None) -> Register: ...

    def _org_name(self, org_id: str) -> str:
        org = self.register().organisations.get(org_id)
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
        if not isinstance(code, str) or not code:
            raise AuthError(_WRONG_CODE, field="code")
        digest = _hash_code(code)
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(t.subjects.c.position, t.subjects.c.code_hash).where(
                    t.subjects.c.request_id == request_id
                )
            ).all()
        found = None
        for r in rows:
            if r.code_hash and hmac.compare_digest(r.code_hash, digest):
                found = int(r.position)
        if found is None:
            raise AuthError(_WRONG_CODE, field="code", fix="use the code from your notice")
        return found

    def subject_view(self, request_id: str, code: str) -> SubjectView:
        """What the subject holding ``code`` may see: what was released, to whom, the proof."""
        position = self._subject_position(request_id, code)
        rec = self.get(request_id)
        group = None
        if rec.release:
            group = next((g for g in rec.release.groups if position in g.subjects), None)
        notice = next((n for n in rec.notices if n.subject == position), None)
        proof: list[str] = []
        size: int | None = None
        note: str | None = None
        if group is not None:
            size, note = self._signed_tree(group.log_index)
            proof = [h.hex() for h in self.ledger.inclusion_proof(group.log_index, size)]
        return SubjectView(
            request_id=rec.id,
            subject=position,
            holder=rec.holder,
            holder_name=self._org_name(rec.holder),
            recipient=rec.release.recipient if rec.release else None,
            recipient_name=rec.release.recipient_name if rec.release else None,
            purpose=rec.purpose,
            legal_basis=rec.legal_basis,
            court_order=rec.court_order is not None,
            categories=group.categories if group else [],
            released_at=rec.release.sent_at if rec.release else None,
            stage=rec.stage,
            outcome=rec.outcome,
            notice_status=notice.status if notice else None,
            release_index=group.log_index if group else None,
            tree_size=size,
            inclusion_proof=proof,
            checkpoint=note,
            commitment=rec.subjects[position].commitment,
            can_appeal=rec.stage == "reviewed" and rec.outcome == "released",
            appeal=rec.appeal,
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
        """Deliver every notice that is due and not yet delivered; returns how many."""
        pending = self.notices(undelivered=True)
        for n in pending:
            self._deliver(n.id)
        return len(pending)

    def _deliver(self, notice_id: int) -> None:
        with self.store.read() as conn:
            n, req, subj = _notice_rows(conn, notice_id)
        size, note = self._signed_tree(n.release_index)
        code = secrets.token_urlsafe(16)
        rel = json.loads(req.release)
        group = next(g for g in rel["groups"] if g["log_index"] == n.release_index)
        data: dict[str, Any] = {
            "request_id": req.id,
            "holder": req.holder,
            "holder_name": self._org_name(req.holder),
            "recipient": rel["recipient"],
            "recipient_name": self._org_name(rel["recipient"]),
            "purpose": req.purpose,
            "legal_basis": req.legal_basis,
            "court_order": bool(json.loads(req.document).get("court_order")),
            "categories": group["categories"],
            "released_at": rel["sent_at"],
            "release_index": n.release_index,
            "tree_size": size,
            "root": self.ledger.root(size).hex(),
            "inclusion_proof": [
                h.hex() for h in self.ledger.inclusion_proof(n.release_index, size)
            ],
            "commitment": subj.commitment,
            "checkpoint": note,
        }
        # The code's hash is stored before the notice leaves, so the code works on arrival.
        with self.store.write() as conn:
            conn.execute(
                t.subjects.update()
                .where((t.subjects.c.request_id == req.id) & (t.subjects.c.position == n.position))
                .values(code_hash=_hash_code(code))
            )
            conn.execute(
                t.notices.update().where(t.notices.c.id == notice_id).values(body=json.dumps(data))
            )
        subject_line, body = render_notice({**data, "code": code})
        notice = Notice(notice_id, req.id, subj.contact, subject_line, body, data)
        used = self.channel.name
        try:
            self.channel.send(notice)
        except (CarewallError, OSError, smtplib.SMTPException):
            # Never lose a notice: keep it for the holder to send by other means.
            if isinstance(self.channel, OutboxChannel):
                raise
            OutboxChannel(self.store).send(notice)
            used = "outbox"
        with self.store.write() as conn:
            conn.execute(
                t.notices.update()
                .where(t.notices.c.id == notice_id)
                .values(delivered_at=rfc3339(self.clock()), channel=used)
            )


def _notice_rows(conn: Connection, notice_id: int) -> tuple[Row[Any], Row[Any], Row[Any]]:
    n = conn.execute(sa.select(t.notices).where(t.notices.c.id == notice_id)).first()
    if n is None:
        raise NotFoundError("no such notice", field="notice")
    if n.status != "sent":
        raise InputError("a deferred notice is not sent", field="notice")
    req = conn.execute(sa.select(t.requests).where(t.requests.c.id == n.request_id)).one()
    subj = conn.execute(
        sa.select(t.subjects).where(
            (t.subjects.c.request_id == n.request_id) & (t.subjects.c.position == n.position)
        )
    ).one()
    return n, req, subj
