"""What a requester or a subject lodges against a request: an appeal, or a withdrawal.

Each is one writer transaction: the request's row locked, the lifecycle step checked
(:mod:`carewall.service.lifecycle`), the ledger entry appended, the request's stage and an
event recorded. The caller reads back the record.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from carewall.errors import AuthError, ConflictError, InputError
from carewall.service import logentries as le
from carewall.service import tables as t
from carewall.service.lifecycle import Action, Outcome, next_stage
from carewall.service.release_plan import ReleasePlan, released_count, released_group
from carewall.service.request_record import claimed_facts
from carewall.service.statements import _UPDATE_REQUEST
from carewall.text import check_text

if TYPE_CHECKING:
    from carewall.service.facade import Service

__all__ = ["lodge_appeal", "withdraw"]


def _subject_cannot_appeal() -> ConflictError:
    """A subject's appeal that the lifecycle refuses, in words that say nothing of why.

    This subject has appealed already, or the release was found wrong on appeal (perhaps
    another subject's), or their information was not released. A subject must learn
    nothing of the request beyond their own part: not its stage, nor that someone else
    appealed. So every such refusal reads the same.
    """
    return ConflictError(
        "this request can no longer be appealed here",
        field="request",
        fix="contact the data protection officer at the organisation named in your notice "
        "(the one that shared your information) to ask for the decision to be looked at again",
    )


def lodge_appeal(
    svc: Service,
    id: str,
    by: Literal["requester", "subject"],
    grounds: str,
    subject: int | None,
) -> None:
    """An appeal lodged: the requester against a refusal (once), a subject against a release.

    Each subject whose information a release shared may appeal it once, whoever appealed
    before them; while an appeal waits for its decision, later ones wait behind it and
    are decided in the order lodged (:func:`carewall.service.deciding.decide_appeal`).
    ``subject`` is the appealing subject's position (None: lodged for a subject by the
    holder's staff, who counts against the subjects released like any other).
    """
    if by not in ("requester", "subject"):
        raise InputError("must be 'requester' or 'subject'", field="by")
    if not isinstance(grounds, str) or not grounds.strip():
        raise InputError("give the grounds of the appeal", field="grounds")
    check_text(grounds, field="grounds", kind="prose", max_length=10000)
    if by == "requester" and subject is not None:
        raise InputError(
            "names a subject, but the appeal is the requester's",
            field="subject",
            fix="leave the subject out, or lodge the appeal for the subject",
        )
    action = Action.APPEAL_REQUESTER if by == "requester" else Action.APPEAL_SUBJECT
    with svc._write() as conn:
        row = svc._lock_row(conn, id)
        try:
            stage = next_stage(row.stage, row.outcome, action)
        except ConflictError as e:
            if by == "requester":
                raise  # the requester may know its own request's stage and outcome
            raise _subject_cannot_appeal() from e
        if by == "subject" and not _may_appeal_release(conn, row, subject):
            raise _subject_cannot_appeal()
        now = le.rfc3339(svc.clock())
        idx = svc.ledger.append_in(conn, [le.appeal_entry(id, by, "lodged", now)])
        conn.execute(
            t.appeals.insert(),
            {
                "request_id": id,
                "by": by,
                "grounds": grounds,
                "prior_outcome": row.outcome,
                "lodged_at": now,
                "subject": subject if by == "subject" else None,
            },
        )
        conn.execute(_UPDATE_REQUEST, {"rid": id, "stage": stage.value})
        svc._event(conn, id, "appeal_lodged", now, by, idx[0])


_SUBJECT_APPEALS = sa.select(t.appeals.c.subject).where(
    (t.appeals.c.request_id == sa.bindparam("rid")) & (t.appeals.c.by == "subject")
)
_CLAIMED = sa.select(
    t.subjects.c.is_child, t.subjects.c.is_victim_or_witness, t.subjects.c.consent
).where(
    (t.subjects.c.request_id == sa.bindparam("rid"))
    & (t.subjects.c.position == sa.bindparam("pos"))
)


def _may_appeal_release(conn: Connection, row: Row[Any], subject: int | None) -> bool:
    """Whether a subject (at ``subject``; None: unnamed) may appeal the request's release:
    theirs was among the information released, they have not appealed it before, and
    fewer subjects have appealed than it released (the auditor holds the log to that)."""
    if row.outcome != Outcome.RELEASED.value or not row.release:
        return False
    appealed = [a for (a,) in conn.execute(_SUBJECT_APPEALS, {"rid": row.id})]
    if subject is not None and subject in appealed:
        return False
    release = json.loads(row.release)
    plan = ReleasePlan.of_record(release)
    if subject is not None:  # theirs must be among the information released
        claimed = conn.execute(_CLAIMED, {"rid": row.id, "pos": subject}).first()
        if (
            claimed is None
            or released_group(release, plan, subject, claimed_facts(claimed)) is None
        ):
            return False
    return len(appealed) < released_count(release, plan)


def withdraw(svc: Service, id: str, by_org: str) -> None:
    """The requester withdraws a request not yet reviewed; a ``withdrawal`` entry says so."""
    with svc._write() as conn:
        row = svc._lock_row(conn, id)
        if by_org != row.requester:
            raise AuthError(
                "only the requesting organisation can withdraw its request",
                field="by_org",
                fix="withdraw as the requester",
            )
        stage = next_stage(row.stage, row.outcome, Action.WITHDRAW)
        now = le.rfc3339(svc.clock())
        idx = svc.ledger.append_in(conn, [le.withdrawal_entry(id, by_org, now)])
        conn.execute(
            _UPDATE_REQUEST,
            {
                "rid": id,
                "stage": stage.value,
                "outcome": Outcome.WITHDRAWN.value,
                "withdrawn_by": by_org,
                "withdrawn_at": now,
            },
        )
        svc._event(conn, id, "withdrawn", now, by_org, idx[0])
