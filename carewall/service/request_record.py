"""One request's full DPO record (:meth:`Service.get`): five reads, statements built once.

``get`` is on every reviewer's page and on every step of a bulk load (the demo's year), so
its statements are prebuilt with bound parameters: SQLAlchemy then reuses their cache key
and compiled form instead of building and hashing five new statements per call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from carewall.errors import NotFoundError
from carewall.policy.facts import SubjectFacts
from carewall.service import tables as t
from carewall.service.records import (
    AppealRecord,
    EventRecord,
    HeldFacts,
    NoticeRecord,
    ReleaseGroup,
    ReleaseRecord,
    RequestRecord,
    SubjectRecord,
)
from carewall.service.release_plan import ReleasePlan
from carewall.service.statements import _APPEALS

__all__ = [
    "REQUEST",
    "appeal_in_hand",
    "appeal_record",
    "claimed_facts",
    "notice_record",
    "read_record",
]

_RID: sa.BindParameter[str] = sa.bindparam("rid")

# Built once so their compiled forms are reused for every record read.
REQUEST = sa.select(t.requests).where(t.requests.c.id == _RID)
_SUBJECTS = (
    sa.select(t.subjects).where(t.subjects.c.request_id == _RID).order_by(t.subjects.c.position)
)
_EVENTS = sa.select(t.events).where(t.events.c.request_id == _RID).order_by(t.events.c.id)
_NOTICES = sa.select(t.notices).where(t.notices.c.request_id == _RID).order_by(t.notices.c.id)


def notice_record(r: Row[Any]) -> NoticeRecord:
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


def appeal_in_hand(rows: Sequence[Row[Any]]) -> Row[Any] | None:
    """Of a request's appeals (in the order lodged), the one to decide next (the oldest
    not yet decided), or else the latest; None if there are none."""
    pending = next((r for r in rows if r.result is None), None)
    return pending if pending is not None else (rows[-1] if rows else None)


def appeal_record(r: Row[Any] | None) -> AppealRecord | None:
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


def claimed_facts(s: Any) -> SubjectFacts:
    return SubjectFacts(bool(s.is_child), bool(s.is_victim_or_witness), bool(s.consent))


def _held(s: Row[Any], plan: ReleasePlan | None) -> HeldFacts | None:
    """A subject's facts as the holder recorded them at release (None: not released)."""
    if s.held_child is not None:
        return HeldFacts(
            is_child=bool(s.held_child),
            is_victim_or_witness=bool(s.held_victim),
            consent=bool(s.held_consent),
        )
    if plan is None:
        return None
    # the release's job has not written this subject's record yet: it follows from the plan
    h = plan.held(int(s.position), claimed_facts(s))
    return HeldFacts(
        is_child=h.is_child, is_victim_or_witness=h.is_victim_or_witness, consent=h.consent
    )


def read_record(conn: Connection, request_id: str, org_name: Callable[[str], str]) -> RequestRecord:
    """Request ``request_id``'s full record, read on ``conn``; NotFoundError if none.

    ``org_name`` names the release's recipient (called only for a released request).
    """
    params = {"rid": request_id}
    row = conn.execute(REQUEST, params).first()
    if row is None:
        raise NotFoundError("no such request", field="id", fix="check the request id")
    subjects = conn.execute(_SUBJECTS, params).all()
    events = conn.execute(_EVENTS, params).all()
    appeals = conn.execute(_APPEALS, params).all()
    notices = conn.execute(_NOTICES, params).all()
    doc = json.loads(row.document)
    release = None
    plan: ReleasePlan | None = None
    if row.release:
        rel = json.loads(row.release)
        plan = ReleasePlan.of_record(rel)
        if plan is not None:  # a group's subjects follow from the plan
            members = plan.positions((int(s.position), claimed_facts(s)) for s in subjects)
            rel["groups"] = [
                {
                    "subjects": members[k],
                    "categories": g["categories"],
                    "log_index": g["log_index"],
                }
                for k, g in enumerate(rel["groups"])
            ]
        release = ReleaseRecord(
            sent_at=rel["sent_at"],
            recipient=rel["recipient"],
            recipient_name=org_name(rel["recipient"]),
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
                held=_held(s, plan),
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
        appeal=appeal_record(appeal_in_hand(appeals)),
        appeals=[a for a in map(appeal_record, appeals) if a is not None],
        notices=[notice_record(n) for n in notices],
        withdrawn_by=row.withdrawn_by,
        withdrawn_at=row.withdrawn_at,
        events=[
            EventRecord(kind=e.kind, time=e.time, actor=e.actor, log_index=e.log_index)
            for e in events
        ],
    )
