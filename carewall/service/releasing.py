"""Releasing data: the holder's record of the subjects, the release, and its log entries.

What a requester says about a subject (child, victim or witness, consent) is a claim. Before
anything is released the holder's reviewer confirms or corrects each subject's facts, and
the release is decided again on the holder's record (contract §3). Consent is never taken
as given: a subject counts as consenting only when the reviewer says so for that subject.

Each subject gets only what the decision at submission AND the decision on the holder's
record both permit; one ``release`` entry is written per group of subjects who share the
holder's facts and the categories released, and nothing else leaves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from carewall.errors import ConflictError, InputError
from carewall.policy import Register, parse_request
from carewall.policy.facts import SubjectFacts, facts_of
from carewall.service import logentries as le
from carewall.service import tables as t
from carewall.service.jobs import queue_notices
from carewall.service.jobstore import QueuedJob
from carewall.service.lifecycle import Outcome
from carewall.service.release import plan_release, union
from carewall.service.statements import _UPDATE_REQUEST

if TYPE_CHECKING:
    from carewall.service.facade import Service

__all__ = [
    "MAX_DEFERRAL_DAYS",
    "FactCorrection",
    "deferral_until",
    "held_facts",
    "parse_corrections",
    "release_in",
]

MAX_DEFERRAL_DAYS = 90
DEFAULT_DEFERRAL_DAYS = 90
FactCorrection = Mapping[str, Any]
_FACT_FIELDS = ("is_child", "is_victim_or_witness", "consent")


def parse_corrections(items: Sequence[Any] | None, n: int) -> dict[int, dict[str, bool]]:
    """The reviewer's per-subject statements, checked: ``{"subject": i, <fact>: bool, …}``.

    Each item names one subject by position and gives any of ``is_child``,
    ``is_victim_or_witness`` and ``consent``; a subject named twice, an unknown field or a
    position outside the request is an InputError naming the item.
    """
    out: dict[int, dict[str, bool]] = {}
    for k, item in enumerate(items or ()):
        where = f"facts[{k}]"
        if not isinstance(item, Mapping):
            raise InputError("must be an object", field=where, fix='e.g. {"subject": 0, ...}')
        unknown = sorted(set(item) - {"subject", *_FACT_FIELDS})
        if unknown:
            raise InputError(
                f"unknown field {unknown[0][:40]!r}",
                field=f"{where}.{unknown[0][:40]}",
                fix="give subject and any of: " + ", ".join(_FACT_FIELDS),
            )
        pos = item.get("subject")
        if not isinstance(pos, int) or isinstance(pos, bool) or not 0 <= pos < n:
            raise InputError(
                "must be a subject's position in the request",
                field=f"{where}.subject",
                fix=f"an integer from 0 to {n - 1}",
            )
        if pos in out:
            raise InputError("names a subject twice", field=f"{where}.subject")
        facts: dict[str, bool] = {}
        for f in _FACT_FIELDS:
            if f in item:
                if not isinstance(item[f], bool):
                    raise InputError("must be true or false", field=f"{where}.{f}")
                facts[f] = item[f]
        if not facts:
            raise InputError(
                "confirms nothing", field=where, fix="give any of: " + ", ".join(_FACT_FIELDS)
            )
        out[pos] = facts
    return out


def held_facts(
    claimed: Sequence[SubjectFacts], corrections: Mapping[int, Mapping[str, bool]]
) -> tuple[list[SubjectFacts], int]:
    """The holder's record of every subject, and how many differ from the claim.

    A flag the reviewer does not state is confirmed as claimed; consent is false unless the
    reviewer states it for that subject (a claim of consent is never enough on its own).
    """
    held: list[SubjectFacts] = []
    for i, c in enumerate(claimed):
        said = corrections.get(i, {})
        held.append(
            SubjectFacts(
                said.get("is_child", c.is_child),
                said.get("is_victim_or_witness", c.is_victim_or_witness),
                said.get("consent", False),
            )
        )
    return held, sum(1 for a, b in zip(claimed, held, strict=True) if a != b)


def deferral_until(
    prejudice: bool,
    defer_until: str | None,
    no_defer: bool,
    today: date,
    default_days: int,
) -> str | None:
    """The reviewer's deferral decision as a review date, or None for no deferral."""
    if no_defer:
        if defer_until:
            raise InputError(
                "asks both to defer and not to defer", field="defer_until", fix="choose one"
            )
        return None
    if defer_until is None:
        if not prejudice:
            return None
        days = min(max(default_days, 1), MAX_DEFERRAL_DAYS)
        return (today + timedelta(days=days)).isoformat()
    return check_review_date(defer_until, today)


def check_review_date(value: str, today: date, field: str = "defer_until") -> str:
    """A review date: a real YYYY-MM-DD after today and at most 90 days ahead."""
    try:
        if not isinstance(value, str) or len(value) != 10 or not value.isascii():
            raise ValueError(value)
        when = date.fromisoformat(value)
    except ValueError:
        raise InputError("is not a date", field=field, fix="write it as YYYY-MM-DD") from None
    if when <= today or when > today + timedelta(days=MAX_DEFERRAL_DAYS):
        raise InputError(
            "the review date must be after today and at most 90 days ahead",
            field=field,
            fix=f"a date from {today + timedelta(days=1)} to "
            f"{today + timedelta(days=MAX_DEFERRAL_DAYS)}",
        )
    return value


def _claimed(rows: Sequence[Any]) -> list[SubjectFacts]:
    return [
        SubjectFacts(bool(r.is_child), bool(r.is_victim_or_witness), bool(r.consent)) for r in rows
    ]


def release_in(
    svc: Service,
    conn: Connection,
    row: Row[Any],
    register: Register,
    reviewer_id: str,
    now: str,
    leading: list[dict[str, Any]],
    facts_said: Sequence[Any] | None,
    defer_until: str | None,
    no_defer: bool,
) -> QueuedJob | None:
    """Release what both decisions permit on the holder's record; log it all at once.

    ``facts_said`` is the reviewer's statements about the subjects (see
    :func:`parse_corrections`); ``defer_until``/``no_defer`` their deferral decision.
    ``leading`` entries (an overturned appeal's) are appended first, in the same
    transaction, before the ``review`` entry that carries the holder's record.

    Returns the job, queued in the same transaction, that delivers the notices (None when
    they are deferred): the per-subject work is the job's, off the caller's transaction.
    """
    doc = json.loads(row.document)
    today = date.fromisoformat(now[:10])
    corrections = parse_corrections(facts_said, len(doc["subjects"]))
    days = int(svc._setting(conn, "deferral_days") or DEFAULT_DEFERRAL_DAYS)
    review_date = deferral_until(bool(doc.get("prejudice")), defer_until, no_defer, today, days)
    engine = svc.engine(conn)
    # The request-wide facts, decided again on today's register; the subjects were checked
    # when the request was received and are read from their rows below (one is enough for
    # the parser, and re-parsing 100,000 of them would dominate a large release).
    facts, _ = facts_of(
        parse_request(dict(doc, subjects=doc["subjects"][:1]), register, today=today)
    )
    s = t.subjects.c
    subjects = conn.execute(
        sa.select(s.position, s.is_child, s.is_victim_or_witness, s.consent, s.commitment)
        .where(t.subjects.c.request_id == row.id)
        .order_by(t.subjects.c.position)
    ).all()
    claimed = _claimed(subjects)
    held, corrected = held_facts(claimed, corrections)
    fresh = engine.decide_facts(facts, held, register).to_json()
    policy = str(fresh.get("policy", engine.policy_hash))
    plan = plan_release(json.loads(row.decision), fresh, len(subjects))
    if not plan:
        unconfirmed = sum(1 for i, c in enumerate(claimed) if c.consent and not held[i].consent)
        hint = (
            f"; {unconfirmed} subject(s) were claimed to consent, which the reviewer has not "
            "confirmed (state consent per subject in facts)"
            if unconfirmed
            else ""
        )
        raise ConflictError(
            "the policy permits nothing to be released on the holder's record" + hint,
            fix="confirm or correct the subjects' facts, or refuse the request",
        )
    # one release entry per (holder's facts, categories): a group is never mixed
    groups: dict[tuple[SubjectFacts, tuple[str, ...]], list[int]] = {}
    for planned, allowed in plan:
        for p in planned:
            groups.setdefault((held[p], tuple(allowed)), []).append(p)
    released = union(plan)
    entries: list[dict[str, Any]] = list(leading)
    # The review entry carries the holder's record. After an overturned appeal it follows
    # the appeal's entry, signed by the appeal reviewer who released.
    entries.append(
        dict(
            le.review_entry(
                row.id,
                "released",
                reviewer_id,
                released,
                now,
                confirmed=held,
                corrected=corrected,
            )
        )
    )
    first_release = len(entries)
    functions = svc._functions(register)
    for (f, group_cats), positions in groups.items():
        entries.append(
            dict(
                le.release_entry(
                    doc,
                    row.id,
                    functions,
                    categories=group_cats,
                    facts=f,
                    count=len(positions),
                    reviewer=reviewer_id,
                    policy=policy,
                    time=now,
                )
            )
        )
    notice_for = [(p, g) for g, positions in enumerate(groups.values()) for p in positions]
    if review_date is not None:
        entries.append(
            dict(
                le.deferral_entry(
                    row.id, "deferred", reviewer_id, len(notice_for), review_date, now
                )
            )
        )
    else:
        entries += [
            dict(le.notice_entry(row.id, subjects[p].commitment, now)) for p, _ in notice_for
        ]
    idx = svc.ledger.append_in(conn, entries)
    for i, e in enumerate(leading):
        svc._event(conn, row.id, "appeal_" + str(e.get("stage")), now, reviewer_id, idx[i])
    svc._event(
        conn,
        row.id,
        "reviewed",
        now,
        reviewer_id,
        idx[len(leading)],
        {"outcome": "released", "corrected": corrected},
    )
    release_groups = []
    for g, ((_, group_cats), positions) in enumerate(groups.items()):
        li = idx[first_release + g]
        release_groups.append(
            {"subjects": positions, "categories": list(group_cats), "log_index": li}
        )
        svc._event(conn, row.id, "released", now, reviewer_id, li)
    base = first_release + len(groups)
    if review_date is not None:
        svc._event(conn, row.id, "deferred", now, reviewer_id, idx[base], {"until": review_date})
    notice_rows = [
        {
            "request_id": row.id,
            "position": p,
            "status": "deferred" if review_date else "sent",
            "review_date": review_date,
            "release_index": release_groups[g]["log_index"],
            "log_index": idx[base] if review_date else idx[base + k],
            "created_at": now,
        }
        for k, (p, g) in enumerate(notice_for)
    ]
    if notice_rows:
        conn.execute(t.notices.insert(), notice_rows)
    # The holder's record: one statement confirms every flag as claimed (consent unstated
    # is no consent), then one per subject the reviewer spoke about.
    conn.execute(
        t.subjects.update()
        .where(t.subjects.c.request_id == row.id)
        .values(
            held_child=t.subjects.c.is_child,
            held_victim=t.subjects.c.is_victim_or_witness,
            held_consent=sa.false(),
        )
    )
    if corrections:
        conn.execute(
            t.subjects.update()
            .where(
                (t.subjects.c.request_id == sa.bindparam("rid"))
                & (t.subjects.c.position == sa.bindparam("pos"))
            )
            .values(
                held_child=sa.bindparam("child"),
                held_victim=sa.bindparam("victim"),
                held_consent=sa.bindparam("h_consent"),
            ),
            [
                {
                    "rid": row.id,
                    "pos": pos,
                    "child": held[pos].is_child,
                    "victim": held[pos].is_victim_or_witness,
                    "h_consent": held[pos].consent,
                }
                for pos in corrections
            ],
        )
    record = {
        "sent_at": now,
        "recipient": row.requester,
        "reviewer": reviewer_id,
        "policy": policy,
        "categories": released,
        "groups": release_groups,
        "corrected": corrected,
    }
    values: dict[str, Any] = {
        "rid": row.id,
        "outcome": Outcome.RELEASED.value,
        "released_at": now,
        "release": json.dumps(record),
    }
    if review_date is not None:
        values |= {
            "deferral": "deferred",
            "deferral_until": review_date,
            "deferral_by": reviewer_id,
        }
    conn.execute(_UPDATE_REQUEST, values)
    return None if review_date is not None else queue_notices(svc, conn, row.id, now)
