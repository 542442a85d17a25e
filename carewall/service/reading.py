"""Reading the service's records, and delivering notices (the two things done after commit).

Reads never take the writer's lock. Delivery runs after the release transaction has
committed and the checkpoint is published, so the inclusion proof in a notice is against a
signed tree that already holds the release.
"""

from __future__ import annotations

import hmac
import json
import re
from collections import Counter
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from carewall.errors import AuthError, InputError, NotFoundError
from carewall.ledger.checkpoint import parse_checkpoint
from carewall.ledger.note import parse_note
from carewall.ledger.subjects import SubjectTree
from carewall.service import tables as t
from carewall.service.delivery import Delivery, commitments_of, hash_code, subjects_facts
from carewall.service.records import (
    AppealRecord,
    NoticeRecord,
    RequestRecord,
    RequestSummary,
    SubjectView,
)
from carewall.service.release_plan import ReleasePlan, released_group
from carewall.service.request_record import (
    REQUEST,
    appeal_record,
    claimed_facts,
    notice_record,
    read_record,
)
from carewall.service.statements import _APPEALS
from carewall.witness.client import with_cosignatures

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from contextlib import AbstractContextManager
    from datetime import datetime

    from carewall.ledger import Ledger
    from carewall.policy import Register
    from carewall.service.documents import Documents
    from carewall.service.notices import Channel
    from carewall.storage.db import Store

__all__ = ["ReadMixin", "received_bounds"]

_WRONG_CODE = "the request id and access code do not match"
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _appeal_for_subject(own: Row[Any] | None, requester: Row[Any] | None) -> AppealRecord | None:
    """The appeal a subject may see: their own (``own``) in full; else the requester's
    without its grounds; another subject's not at all (its grounds are theirs, and that
    they appealed is theirs to tell)."""
    if own is not None:
        return appeal_record(own)
    appeal = appeal_record(requester)
    return None if appeal is None else appeal.model_copy(update={"grounds": None})


_APPEAL_STAGES = ("appealed", "upheld", "overturned")


def _stage_for_subject(
    stage: str,
    outcome: str,
    rows: Sequence[Row[Any]],
    own: Row[Any] | None,
    requester: Row[Any] | None,
) -> str:
    """The request's stage as a subject may see it: where their own appeal (``own``)
    stands, or the requester's; another subject's appeal shows only when it found the
    release wrong (that concerns everyone released)."""
    if stage not in _APPEAL_STAGES:
        return stage
    if own is not None:
        return str(own.result or "appealed")
    if outcome == "refused" and any(r.by == "subject" and r.result == "overturned" for r in rows):
        return "overturned"
    if requester is not None:
        return str(requester.result or "appealed")
    return "reviewed"


def _summary(r: Row[Any], doc: dict[str, Any] | None = None) -> RequestSummary:
    if doc is None:
        doc = json.loads(r.document)
    return RequestSummary(
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


def _day(value: str, field: str) -> date:
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        raise InputError("is not a date", field=field, fix="write it as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError("is not a date", field=field, fix="write it as YYYY-MM-DD") from None


def received_bounds(since: str | None, until: str | None) -> tuple[str | None, str | None]:
    """``since`` and ``until`` (days, both included) as bounds on the stored RFC 3339 times:
    ``received_at >= first`` and ``received_at < after``."""
    first = _day(since, "since") if since else None
    last = _day(until, "until") if until else None
    if first is not None and last is not None and last < first:
        raise InputError("is before since", field="until", fix="give until on or after since")
    # stored times are "YYYY-MM-DDTHH:MM:SSZ", so a bare day sorts before every time in it
    after = None if last is None or last == date.max else (last + timedelta(days=1)).isoformat()
    return (first.isoformat() if first else None), after


def _reference(store: Store) -> sa.ColumnElement[str]:
    """The requester's reference, read from the stored document with the database's JSON
    function (so paging stays in SQL). An equality test: ``%`` and ``_`` match themselves."""
    doc = t.requests.c.document
    # SQLite reads JSON from text as it is; PostgreSQL needs the text cast to json
    as_json = sa.type_coerce(doc, sa.JSON) if store.is_sqlite else sa.cast(doc, sa.JSON)
    reference: sa.ColumnElement[str] = as_json["reference"].as_string()
    return reference


class ReadMixin:
    """Read side of :class:`~carewall.service.facade.Service`."""

    if TYPE_CHECKING:
        store: Store
        ledger: Ledger
        channel: Channel
        documents: Documents
        public_url: str | None
        clock: Callable[[], datetime]
        _writer_turn: AbstractContextManager[Any]

        def register(self, conn: Connection | None = None) -> Register: ...

    def _org_name(self, org_id: str, conn: Connection | None = None) -> str:
        org = self.register(conn).any_organisation(org_id)
        return org.name if org else org_id

    def get(self, id: str) -> RequestRecord:
        """The full DPO record of one request (holds personal data)."""
        with self.store.read() as conn:
            return read_record(conn, id, lambda org: self._org_name(org, conn))

    def summary(self, id: str) -> RequestSummary:
        """One request's summary (as in a list): one row read, whatever its size."""
        with self.store.read() as conn:
            r = conn.execute(REQUEST, {"rid": id}).first()
        if r is None:
            raise NotFoundError("no such request", field="id", fix="check the request id")
        return _summary(r, self.documents.get(r.id, r.document))

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
        reference: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        start_after: tuple[str, str] | None = None,
    ) -> list[RequestSummary]:
        """Requests, oldest first; ``state`` matches a stage or an outcome.

        ``start_after`` (``received_at``, ``id``): only requests after that one (keyset
        paging, so a page never repeats or skips one as requests come and go).

        ``reference`` matches the requester's reference exactly (no wildcards); it is read
        from the private document, so it filters but is never returned. ``since`` and
        ``until`` (YYYY-MM-DD, both days included, UTC) bound the day each was received; a
        malformed day is an :class:`InputError` naming ``since`` or ``until``.
        """
        first, after = received_bounds(since, until)
        q = sa.select(t.requests).order_by(t.requests.c.received_at, t.requests.c.id)
        if holder:
            q = q.where(t.requests.c.holder == holder)
        if requester:
            q = q.where(t.requests.c.requester == requester)
        if state:
            q = q.where((t.requests.c.stage == state) | (t.requests.c.outcome == state))
        if reference:
            q = q.where(_reference(self.store) == reference)
        if first is not None:
            q = q.where(t.requests.c.received_at >= first)
        if after is not None:
            q = q.where(t.requests.c.received_at < after)
        if start_after is not None:
            at, rid = start_after
            q = q.where(
                (t.requests.c.received_at > at)
                | ((t.requests.c.received_at == at) & (t.requests.c.id > rid))
            )
        if limit is not None:
            q = q.limit(limit)
        if offset:
            q = q.offset(offset)
        with self.store.read() as conn:
            rows = conn.execute(q).all()
        return [_summary(r) for r in rows]

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
            return [notice_record(r) for r in conn.execute(q).all()]

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
        digest = hash_code(code)
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
            req = conn.execute(REQUEST, {"rid": request_id}).one()
            subj = conn.execute(
                sa.select(
                    t.subjects.c.commitment,
                    t.subjects.c.position,
                    t.subjects.c.is_child,
                    t.subjects.c.is_victim_or_witness,
                    t.subjects.c.consent,
                ).where(
                    (t.subjects.c.request_id == request_id) & (t.subjects.c.position == position)
                )
            ).one()
            notice = conn.execute(
                sa.select(t.notices.c.status, t.notices.c.path)
                .where((t.notices.c.request_id == request_id) & (t.notices.c.position == position))
                .order_by(t.notices.c.id.desc())
                .limit(1)
            ).first()
            appeals = conn.execute(_APPEALS, {"rid": request_id}).all()
            count, root, request_index = subjects_facts(conn, req)
            path = None if notice is None or not notice.path else json.loads(notice.path)
            if path is None:
                path = SubjectTree(commitments_of(conn, request_id)).proof(position)
        own = next((a for a in appeals if a.by == "subject" and a.subject == position), None)
        requester = next((a for a in appeals if a.by == "requester"), None)  # one at most
        release = json.loads(req.release) if req.release else None
        group = None
        if release:
            plan = ReleasePlan.of_record(release)
            group = released_group(release, plan, position, claimed_facts(subj))
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
            stage=_stage_for_subject(req.stage, req.outcome, appeals, own, requester),
            outcome=req.outcome,
            notice_status=notice.status if notice else None,
            release_index=group["log_index"] if group else None,
            tree_size=size,
            inclusion_proof=proof,
            checkpoint=note,
            commitment=subj.commitment,
            # their own information released, and not yet appealed by them
            can_appeal=req.outcome == "released" and group is not None and own is None,
            appeal=_appeal_for_subject(own, requester),
            released_on_appeal=requester is not None and requester.result == "overturned",
            request_index=request_index,
            subjects_root=root,
            subject_count=count,
            subject_path=path,
        )

    def _signed_tree(self, index: int) -> tuple[int, str]:
        """The newest signed checkpoint as (size, note), signing one if it misses ``index``.

        A subject's proof is against a checkpoint they can check with the log's public key,
        never against an unsigned size; it carries the witnesses' cosignatures collected
        for it so far (none yet for a checkpoint signed just now).
        """
        note = self.ledger.checkpoint()
        size = parse_checkpoint(parse_note(note).text).size
        if size <= index and self.ledger.writable:
            note = self.ledger.publish()
            size = parse_checkpoint(parse_note(note).text).size
        return size, with_cosignatures(self.ledger, note)

    # ----- delivery (carewall/service/delivery.py) -------------------------------------

    def deliver_pending(self) -> int:
        """Deliver every notice that is due and unclaimed; returns how many THIS call sent."""
        return Delivery(self).pending()

    def release_stale_claims(self, older_than_seconds: float) -> int:
        """Free claims older than ``older_than_seconds`` on notices never delivered."""
        return Delivery(self).release_stale_claims(older_than_seconds)


# Built once so its compiled form is reused for every view.
_BY_CODE = sa.select(t.subjects.c.position, t.subjects.c.code_hash).where(
    (t.subjects.c.request_id == sa.bindparam("rid"))
    & (t.subjects.c.code_hash == sa.bindparam("digest"))
)
