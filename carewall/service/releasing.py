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
from collections import Counter
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
from carewall.service.release_plan import ReleasePlan, default_held, permitted_by_facts
from carewall.service.statements import _UPDATE_REQUEST

if TYPE_CHECKING:
    from carewall.service.extract_terms import Extract
    from carewall.service.facade import Service

__all__ = [
    "MAX_DEFERRAL_DAYS",
    "FactCorrection",
    "deferral_until",
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


_s = t.subjects.c
# Built once, so their compiled forms are reused for every release.
_CLAIMED_COUNTS = (
    sa.select(_s.is_child, _s.is_victim_or_witness, _s.consent, sa.func.count())
    .where(_s.request_id == sa.bindparam("rid"))
    .group_by(_s.is_child, _s.is_victim_or_witness, _s.consent)
)
_CLAIMS_OF = sa.select(_s.position, _s.is_child, _s.is_victim_or_witness, _s.consent).where(
    (_s.request_id == sa.bindparam("rid")) & _s.position.in_(sa.bindparam("pos", expanding=True))
)
_EXTRACT = sa.select(t.extracts.c.state, t.extracts.c.sha256).where(
    t.extracts.c.request_id == sa.bindparam("rid")
)
_EXTRACT_RELEASED = (
    t.extracts.update()
    .where((t.extracts.c.request_id == sa.bindparam("rid")) & (t.extracts.c.state == "held"))
    .values(
        state="released",
        released_at=sa.bindparam("now"),
        released_by=sa.bindparam("reviewer"),
    )
)


def _claimed_counts(conn: Connection, request_id: str) -> dict[SubjectFacts, int]:
    """How many subjects share each combination of claimed facts: one grouped read."""
    rows = conn.execute(_CLAIMED_COUNTS, {"rid": request_id}).all()
    out: dict[SubjectFacts, int] = Counter()
    for a, b, c, n in rows:
        out[SubjectFacts(bool(a), bool(b), bool(c))] += int(n)
    return out


def _claims_of(conn: Connection, request_id: str, positions: list[int]) -> dict[int, SubjectFacts]:
    """The claimed facts of the subjects the reviewer spoke about (few, read in chunks)."""
    out: dict[int, SubjectFacts] = {}
    for k in range(0, len(positions), 900):
        for r in conn.execute(_CLAIMS_OF, {"rid": request_id, "pos": positions[k : k + 900]}):
            out[int(r.position)] = SubjectFacts(
                bool(r.is_child), bool(r.is_victim_or_witness), bool(r.consent)
            )
    return out


def _pairs(
    claimed: Mapping[SubjectFacts, int],
    said: Mapping[int, Mapping[str, bool]],
    claims: Mapping[int, SubjectFacts],
    held_as_claimed: bool = False,
) -> tuple[Counter[tuple[SubjectFacts, SubjectFacts]], dict[int, SubjectFacts]]:
    """How many subjects have each (claimed, held) pair, and the corrected subjects' record.

    A flag the reviewer does not state is confirmed as claimed; consent is false unless the
    reviewer states it for that subject (a claim of consent is never enough on its own).
    """
    pairs: Counter[tuple[SubjectFacts, SubjectFacts]] = Counter()
    if held_as_claimed:
        return Counter({(c, c): n for c, n in claimed.items() if n}), {}
    for c, n in claimed.items():
        pairs[(c, default_held(c))] += n
    corrections: dict[int, SubjectFacts] = {}
    for pos, facts in said.items():
        c = claims[pos]
        h = SubjectFacts(
            facts.get("is_child", c.is_child),
            facts.get("is_victim_or_witness", c.is_victim_or_witness),
            facts.get("consent", False),
        )
        pairs[(c, default_held(c))] -= 1
        pairs[(c, h)] += 1
        corrections[pos] = h
    return +pairs, corrections


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
    extract: Extract | None = None,
) -> QueuedJob:
    """Release what both decisions permit on the holder's record; log it all at once.

    ``facts_said`` is the reviewer's statements about the subjects (see
    :func:`parse_corrections`); ``defer_until``/``no_defer`` their deferral decision.
    ``leading`` entries (an overturned appeal's) are appended first, in the same
    transaction, before the ``review`` entry that carries the holder's record.

    The work here does not grow with the number of subjects: they are read grouped by
    their claimed facts, decided per combination, and logged one ``release`` entry per
    group (:class:`ReleasePlan`). Returns the job, queued in the same transaction, that
    writes each subject's notice (its row and, unless deferred, its ``notice`` entry) and
    delivers them: the per-subject work is the job's, off the caller's transaction.
    """
    # A request made for an extract has its extracts row from the moment it is submitted
    # (pending until its file is held): only its held, checked file is ever released.
    ext_row = conn.execute(_EXTRACT, {"rid": row.id}).first()
    if extract is None and ext_row is not None:
        raise ConflictError(
            "this request is an extract: its file is released with its hash",
            field="id",
            fix="release it with `carewall egress release`",
        )
    if extract is not None and (
        ext_row is None or ext_row.state != "held" or ext_row.sha256 != extract.sha256
    ):
        raise ConflictError(
            "only a held extract's own file can be released",
            field="id",
            fix="see `carewall egress show`",
        )
    doc = svc.documents.get(row.id, row.document)
    today = date.fromisoformat(now[:10])
    n = len(doc["subjects"])
    said = parse_corrections(facts_said, n)
    days = int(svc._setting(conn, "deferral_days") or DEFAULT_DEFERRAL_DAYS)
    review_date = deferral_until(bool(doc.get("prejudice")), defer_until, no_defer, today, days)
    engine = svc.engine(conn)
    # The request-wide facts, decided again on today's register; the subjects were checked
    # when the request was received (one is enough for the parser).
    facts, _ = facts_of(
        parse_request(dict(doc, subjects=doc["subjects"][:1]), register, today=today)
    )
    claimed = _claimed_counts(conn, row.id)
    if extract is not None and said:
        raise InputError(
            "an extract's facts are the holder's own data",
            field="facts",
            fix="correct the source data and make the extract again",
        )
    held_as_claimed = extract is not None
    pairs, corrections = _pairs(
        claimed, said, _claims_of(conn, row.id, sorted(said)), held_as_claimed
    )
    held_counts: Counter[SubjectFacts] = Counter()
    for (_, h), k in pairs.items():
        held_counts[h] += k
    held_list = sorted(held_counts, key=lambda f: (f.is_child, f.is_victim_or_witness, f.consent))
    fresh = engine.decide_facts(facts, held_list, register, count=n).to_json()
    policy = str(fresh.get("policy", engine.policy_hash))
    stored = permitted_by_facts(json.loads(row.decision), list(claimed))
    now_permitted = permitted_by_facts(fresh, held_list)
    if extract is not None:
        extract.check(stored, now_permitted)
    plan = ReleasePlan.build(
        pairs,
        stored,
        now_permitted,
        corrections,
        limit=None if extract is None else extract.categories,
        held_as_claimed=held_as_claimed,
    )
    corrected = sum(k for (c, h), k in pairs.items() if c != h)
    if not plan.groups:
        unconfirmed = sum(k for (c, h), k in pairs.items() if c.consent and not h.consent)
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
    released = plan.categories
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
                confirmed=held_counts,
                corrected=corrected,
            )
        )
    )
    first_release = len(entries)
    functions = svc._functions(register)
    for g in plan.groups:
        entries.append(
            dict(
                le.release_entry(
                    doc,
                    row.id,
                    functions,
                    categories=g.categories,
                    facts=g.facts,
                    count=g.count,
                    reviewer=reviewer_id,
                    policy=policy,
                    time=now,
                    file=None if extract is None else extract.sha256,
                )
            )
        )
    if review_date is not None:
        entries.append(
            dict(
                le.deferral_entry(row.id, "deferred", reviewer_id, plan.released, review_date, now)
            )
        )
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
    for k, g in enumerate(plan.groups):
        li = idx[first_release + k]
        release_groups.append(
            {
                "categories": list(g.categories),
                "log_index": li,
                "count": g.count,
                "facts": g.facts.to_json(),
            }
        )
        svc._event(conn, row.id, "released", now, reviewer_id, li)
    deferral_index = None
    if review_date is not None:
        deferral_index = idx[first_release + len(plan.groups)]
        svc._event(
            conn, row.id, "deferred", now, reviewer_id, deferral_index, {"until": review_date}
        )
    record = {
        "sent_at": now,
        "recipient": row.requester,
        "reviewer": reviewer_id,
        "policy": policy,
        "categories": released,
        "groups": release_groups,
        "corrected": corrected,
        "plan": plan.to_json(),
        "deferral_index": deferral_index,
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
    if extract is not None:  # released in the same transaction as its log entries
        conn.execute(_EXTRACT_RELEASED, {"rid": row.id, "now": now, "reviewer": reviewer_id})
    return queue_notices(svc, conn, row.id, now, total=plan.released, record=True)
