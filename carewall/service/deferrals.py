"""Deferred notices: the holder's decision to delay telling people, and its review.

A requester may ask (``prejudice: true``) that the subjects not be told yet; the holder's
reviewer decides at release, with a review date at most 90 days ahead. Deferred requests are
listed until a reviewer lifts the deferral (the notices go out) or renews it (a new review
date, again at most 90 days ahead). Each decision is a ``deferral`` ledger entry; the
notices themselves are logged only when they are sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from carewall.errors import ConflictError
from carewall.service import logentries as le
from carewall.service import tables as t
from carewall.service.releasing import check_review_date
from carewall.service.statements import _UPDATE_REQUEST
from carewall.storage.db import Store

if TYPE_CHECKING:
    from carewall.service.facade import Service

__all__ = ["Deferral", "change_deferral", "list_deferrals"]


@dataclass(frozen=True)
class Deferral:
    """One request whose notices are held back (ids and dates only: no personal data)."""

    request_id: str
    holder: str
    requester: str
    review_date: str
    decided_by: str
    notices: int

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "holder": self.holder,
            "requester": self.requester,
            "review_date": self.review_date,
            "decided_by": self.decided_by,
            "notices": self.notices,
        }


def list_deferrals(store: Store, holder: str | None, due_by: str | None) -> list[Deferral]:
    """Deferred requests, soonest review date first; ``due_by`` keeps those due by then."""
    q = (
        sa.select(
            t.requests.c.id,
            t.requests.c.holder,
            t.requests.c.requester,
            t.requests.c.deferral_until,
            t.requests.c.deferral_by,
            t.requests.c.release,
        )
        .where(t.requests.c.deferral == "deferred")
        .order_by(t.requests.c.deferral_until, t.requests.c.id)
    )
    if holder:
        q = q.where(t.requests.c.holder == holder)
    if due_by:
        q = q.where(t.requests.c.deferral_until <= due_by)
    with store.read() as conn:
        return [
            Deferral(
                r.id, r.holder, r.requester, r.deferral_until, r.deferral_by, released_count(r)
            )
            for r in conn.execute(q)
        ]


def change_deferral(
    svc: Service,
    conn: Connection,
    row: Row[Any],
    reviewer_id: str,
    now: str,
    until: str | None,
) -> None:
    """Lift (``until`` None: the notices are sent and logged) or renew a deferral."""
    if row.deferral != "deferred":
        raise ConflictError(
            "this request's notices are not deferred",
            field="id",
            fix="list deferrals with `carewall deferral list`",
        )
    # Every subject released was deferred, whether or not the release's job has written
    # all their notice rows yet: the count comes from the release itself.
    deferred = released_count(row)
    if until is not None:
        date_ = check_review_date(until, date.fromisoformat(now[:10]), field="until")
        idx = svc.ledger.append_in(
            conn, [le.deferral_entry(row.id, "renewed", reviewer_id, deferred, date_, now)]
        )
        conn.execute(
            _UPDATE_REQUEST,
            {"rid": row.id, "deferral_until": date_, "deferral_by": reviewer_id},
        )
        conn.execute(
            t.notices.update()
            .where((t.notices.c.request_id == row.id) & (t.notices.c.status == "deferred"))
            .values(review_date=date_)
        )
        svc._event(conn, row.id, "deferral_renewed", now, reviewer_id, idx[0], {"until": date_})
        return
    # Lifted: the entry now; each notice (its row turned to sent, and its log entry) is
    # written by the job the caller queues (carewall.service.recording).
    idx = svc.ledger.append_in(
        conn, [le.deferral_entry(row.id, "lifted", reviewer_id, deferred, None, now)]
    )
    conn.execute(_UPDATE_REQUEST, {"rid": row.id, "deferral": "lifted", "deferral_by": reviewer_id})
    svc._event(conn, row.id, "deferral_lifted", now, reviewer_id, idx[0])


def released_count(row: Any) -> int:
    """How many subjects a released request's release covers."""
    return sum(int(g.get("count", len(g.get("subjects", ())))) for g in _groups(row))


def _groups(row: Any) -> list[dict[str, Any]]:
    rel = json.loads(row.release) if row.release else {}
    return list(rel.get("groups") or [])
