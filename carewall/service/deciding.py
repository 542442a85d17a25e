"""The reviewers' decisions: a release review, and an appeal's decision.

Each is recorded in one writer transaction (the request's row locked, the reviewer checked
against the register, the lifecycle step checked, the ledger entries appended), then the
job it queued runs if its caller claimed it. They return nothing: the facade's callers read
back what they need (the full record, or only the summary).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from carewall.errors import AuthError, ConflictError, InputError
from carewall.service import logentries as le
from carewall.service.extract_terms import Extract
from carewall.service.jobstore import QueuedJob
from carewall.service.lifecycle import Action, Outcome, Stage, next_stage
from carewall.service.releasing import release_in
from carewall.service.statements import _APPEALS, _UPDATE_APPEAL, _UPDATE_REQUEST
from carewall.text import check_text

if TYPE_CHECKING:
    from carewall.service.facade import Service

__all__ = ["decide_appeal", "review"]


def _only_with_release(
    facts: Sequence[Any] | None, defer_until: str | None, no_defer: bool
) -> None:
    """Facts and deferral are the reviewer's decisions about a release, and only that."""
    for given, field in ((facts, "facts"), (defer_until, "defer_until"), (no_defer, "no_defer")):
        if given:
            raise InputError(
                "is decided only with a release",
                field=field,
                fix="leave it out when refusing or upholding",
            )


def review(
    svc: Service,
    id: str,
    reviewer_id: str,
    release: bool,
    note: str | None,
    facts: Sequence[Any] | None,
    defer_until: str | None,
    no_defer: bool,
    extract: Extract | None,
) -> None:
    """Record a review and run its job if claimed (the caller reads back what it needs)."""
    if note is not None:
        check_text(note, field="note", kind="prose", max_length=5000)
    register = svc.register()
    job: QueuedJob | None = None
    with svc._write() as conn:
        row = svc._lock_row(conn, id)
        svc._check_reviewer(register, reviewer_id, row.holder, "release_reviewer")
        next_stage(row.stage, row.outcome, Action.REVIEW)
        now = le.rfc3339(svc.clock())
        if release:
            job = release_in(
                svc,
                conn,
                row,
                register,
                reviewer_id,
                now,
                [],
                facts,
                defer_until,
                no_defer,
                extract,
            )
        else:
            _only_with_release(facts, defer_until, no_defer)
            idx = svc.ledger.append_in(conn, [le.review_entry(id, "refused", reviewer_id, [], now)])
            svc._event(conn, id, "reviewed", now, reviewer_id, idx[0], {"outcome": "refused"})
        values: dict[str, Any] = {
            "stage": Stage.REVIEWED.value,
            "reviewer": reviewer_id,
            "reviewed_at": now,
            "review_note": note,
        }
        if not release:
            values["outcome"] = Outcome.REFUSED.value
        conn.execute(_UPDATE_REQUEST, {"rid": id, **values})
    svc._after_commit(job)


def decide_appeal(
    svc: Service,
    id: str,
    reviewer_id: str,
    uphold: bool,
    facts: Sequence[Any] | None,
    defer_until: str | None,
    no_defer: bool,
) -> None:
    """An appeal reviewer decides the oldest appeal not yet decided, and its job runs if
    claimed (see review).

    Subjects' appeals of a release are decided in the order lodged; the request stays
    ``appealed`` while any waits. Overturning one finds the release wrong: the outcome
    becomes refused, and every subject's appeal still waiting is decided with it, overturned
    (each asked for that), in the same transaction and in the order lodged.
    """
    register = svc.register()
    job: QueuedJob | None = None
    with svc._write() as conn:
        row = svc._lock_row(conn, id)
        svc._check_reviewer(register, reviewer_id, row.holder, "appeal_reviewer")
        if row.reviewer is not None and row.reviewer == reviewer_id:
            raise AuthError(
                "the appeal must be decided by someone other than the first reviewer",
                field="reviewer",
                fix="ask another appeal reviewer",
            )
        stage = next_stage(row.stage, row.outcome, Action.UPHOLD if uphold else Action.OVERTURN)
        waiting = [a for a in conn.execute(_APPEALS, {"rid": id}) if a.result is None]
        if not waiting:  # appealed, yet no appeal row waits: never written so, but say so
            raise ConflictError(
                "no appeal of this request waits for a decision",
                field="id",
                fix="check the request's appeals; ask the operator to repair its record",
            )
        appeal, behind = waiting[0], waiting[1:]
        now = le.rfc3339(svc.clock())
        result: Literal["upheld", "overturned"] = "upheld" if uphold else "overturned"
        entry = dict(le.appeal_entry(id, appeal.by, result, now, reviewer_id))
        decided = [appeal]
        if not uphold and appeal.prior_outcome == Outcome.REFUSED.value:
            job = release_in(
                svc,
                conn,
                row,
                register,
                reviewer_id,
                now,
                [entry],
                facts,
                defer_until,
                no_defer,
            )
        else:
            _only_with_release(facts, defer_until, no_defer)
            entries = [entry]
            if not uphold:  # the release was wrong: every appeal of it waiting succeeds
                decided += behind
                entries += [
                    dict(le.appeal_entry(id, a.by, "overturned", now, reviewer_id)) for a in behind
                ]
            elif behind:
                stage = Stage.APPEALED  # the next subject's appeal waits for its decision
            idx = svc.ledger.append_in(conn, entries)
            for i in idx:
                svc._event(conn, id, "appeal_" + result, now, reviewer_id, i)
            if not uphold:
                conn.execute(_UPDATE_REQUEST, {"rid": id, "outcome": Outcome.REFUSED.value})
        for a in decided:
            conn.execute(
                _UPDATE_APPEAL,
                {"aid": a.id, "reviewer": reviewer_id, "decided_at": now, "result": result},
            )
        conn.execute(_UPDATE_REQUEST, {"rid": id, "stage": stage.value})
    svc._after_commit(job)
