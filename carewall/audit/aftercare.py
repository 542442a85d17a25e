"""``notice``, ``deferral``, ``withdrawal`` and ``deletion`` entries (contract §3, §6).

Each subject released is owed a notice, unless the holder's reviewer defers them (a
``deferral`` ``deferred`` entry right after the releases, with a review date at most 90
days ahead); a deferral is renewed or lifted by a release reviewer at the holder, and a
lift makes the deferred notices owed. Nothing lifts a deferral by itself when its review
date comes (the service lists it as due), so a deferral renewed or lifted more than
:data:`DEFERRAL_GRACE_DAYS` after the end of its review date fails, and so does one still
neither at the end of the signed log. The notices are written after the release by a
background job, so they need not follow it directly: the replay counts what each request
still owes, fails a notice nobody owes, and fails notices logged more than
:data:`NOTICE_DAYS` after the entry that made them due, or still missing that long after
it (judged by the entries' times, at the end of the signed log). The clock for all of
this is the latest time of the entries read so far, never an entry's own time alone: an
entry dated before the entries ahead of it is a finding of its own (:mod:`.replay`), and
cannot make a deadline look met. The same end-of-log check fails an agreement past its end
under which data went and that is still not withdrawn (:func:`.agreements.check_ended`).
A request is withdrawn by its requester after its decision and before any review or
appeal. A deletion names a registered holder; the rest of its shape is checked by the
schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from carewall.audit.agreements import check_ended
from carewall.audit.clock import clock, days
from carewall.audit.releases import close_releases
from carewall.audit.requests import RequestState
from carewall.deadlines import APPEAL_DAYS
from carewall.errors import VerificationError
from carewall.ledger.subjects import verify_subject

if TYPE_CHECKING:
    from carewall.audit.replay import Replay

__all__ = [
    "DEFERRAL_GRACE_DAYS",
    "NOTICE_DAYS",
    "appeals_open",
    "check_overdue",
    "on_deferral",
    "on_deletion",
    "on_notice",
    "on_withdrawal",
    "owe",
]

MAX_DEFERRAL_DAYS = 90
NOTICE_DAYS = 7  # a notice owed is in the log within this many days of becoming due
# A deferral due for review is lifted or renewed within this many days after its review
# date (neither the contract nor the docs give a grace; the notices' own, see
# docs/contract-notes.md).
DEFERRAL_GRACE_DAYS = 7


def _past_review(state: RequestState, now: str) -> float | None:
    """Days from the end of the deferral's review date to ``now``, when the deferral has
    lapsed by then: more than DEFERRAL_GRACE_DAYS after it (and after its lapse was last
    reported, if it was). None when it has not, or when the review date is unknown."""
    if state.deferral != "deferred" or state.review_date is None:
        return None
    end = date.fromisoformat(state.review_date) + timedelta(days=1)
    past = days(f"{end.isoformat()}T00:00:00Z", now)
    since = state.review_reported
    if past > DEFERRAL_GRACE_DAYS and (not since or days(since, now) > DEFERRAL_GRACE_DAYS):
        return past
    return None


def owe(rp: Replay, request_id: str, n: int, index: int, time: str) -> None:
    """``n`` more notices of ``request_id`` became due at entry ``index`` (at ``time``)."""
    state = rp.requests.get(request_id)
    if state is None or n <= 0:
        return
    if state.owed == 0:
        state.owed_since, state.owed_index = time, index
    state.owed += n


def check_overdue(rp: Replay, size: int) -> None:
    """At the end of the signed log: notices due for longer than NOTICE_DAYS are missing,
    appeals and deferrals are overdue, and agreements past their end are not withdrawn."""
    for state in rp.requests.values():
        if state.owed > 0 and days(state.owed_since, rp.latest_time) > NOTICE_DAYS:
            rp.find(
                size,
                "notice",
                f"{state.owed} notice(s) of {state.where()}, due since entry "
                f"{state.owed_index}, are not in the log {NOTICE_DAYS} days later",
            )
            state.owed_since = rp.latest_time  # reported; counted again after NOTICE_DAYS
        _check_appeal(rp, state, size)
        past = _past_review(state, rp.latest_time)
        if past is not None:
            rp.find(
                size,
                "deferral",
                f"the deferral at entry {state.deferral_index} of {state.where()} was due "
                f"for review on {state.review_date}, and is neither lifted nor renewed "
                f"{past:.0f} days after it: nobody deferred has been told",
            )
            state.review_reported = rp.latest_time  # counted again after the grace
    check_ended(rp, size)


def _check_appeal(rp: Replay, state: RequestState, size: int) -> None:
    """At the end of the signed log: an appeal lodged more than APPEAL_DAYS ago (and
    reported that long ago, if it was) and still undecided."""
    if state.stage != "appealed" or not state.appeal_since:
        return
    now = rp.latest_time
    waited = days(state.appeal_since, now)
    reported = state.appeal_reported
    if waited > APPEAL_DAYS and (not reported or days(reported, now) > APPEAL_DAYS):
        rp.find(
            size,
            "appeal",
            f"the appeal at entry {state.appeal_index} against {state.where()} was lodged "
            f"{waited:.0f} days ago and is not decided; an appeal is decided within "
            f"{APPEAL_DAYS} days",
        )
        state.appeal_reported = now


def appeals_open(rp: Replay) -> int:
    """Appeals lodged and not yet decided, over every request."""
    return sum(1 + len(s.appeals_waiting) for s in rp.requests.values() if s.stage == "appealed")


def notices_owed(rp: Replay) -> int:
    """Notices due and not yet in the log, over every request."""
    return sum(s.owed for s in rp.requests.values())


def on_notice(rp: Replay, index: int, e: Mapping[str, Any], fits: bool) -> None:
    state = rp.request(index, e)
    if state is None:
        return
    if state.owed <= 0:
        rp.find(
            index,
            "notice",
            f"is not owed: no release or lifted deferral of {state.where()} has a notice "
            "still to log; no notice is sent while deferred",
        )
    else:
        now = clock(rp.latest_time, e)
        late = days(state.owed_since, now)
        if late > NOTICE_DAYS:
            rp.find(
                index,
                "notice",
                f"is logged {late:.0f} days after entry {state.owed_index} made it due; a "
                f"notice is due within {NOTICE_DAYS} days",
            )
            state.owed_since = now  # reported once per NOTICE_DAYS of lateness
        state.owed -= 1
        if state.owed == 0:
            state.owed_since, state.owed_index = "", -1
    problem = _not_a_subject(state, e)
    if problem is not None:
        rp.find(index, "notice", problem)
    if e["subject"] in state.notices:
        rp.find(
            index, "notice", f"tells the same subject of the request at entry {state.index} twice"
        )
    state.notices.add(e["subject"])


def _not_a_subject(state: RequestState, e: Mapping[str, Any]) -> str | None:
    """Why the notice's commitment is not a subject of its request, if it is not: its path
    must lead from the commitment, at its position, to the request entry's subjects root.
    (A commitment is bound to its request id by the holder's HMAC, so one subject of the
    request has one commitment, and on_notice finds a second notice to them.)"""
    if not state.subjects_root:
        return None  # a state file from before the auditor kept the root
    position = e["subject_position"]
    where = f"the request at entry {state.index}"
    if position >= state.subjects:
        return f"names subject position {position}, but {where} has {state.subjects} subject(s)"
    try:
        verify_subject(
            e["subject"], position, state.subjects, e["subject_path"], state.subjects_root
        )
    except VerificationError:
        return (
            f"is not to a subject of {where}: its commitment and path do not lead to the "
            f"request's subjects_root at position {position}; nobody known to be a subject "
            "was told"
        )
    return None


def _review_date_problem(e: Mapping[str, Any]) -> str | None:
    today = date.fromisoformat(e["time"][:10])
    if e["review_date"] is None:
        return None if e["action"] == "lifted" else f"a {e['action']} deferral needs a review date"
    if e["action"] == "lifted":
        return "a lifted deferral has no review date"
    when = date.fromisoformat(e["review_date"])
    if not today < when <= today + timedelta(days=MAX_DEFERRAL_DAYS):
        return "the review date is not after the entry's day and at most 90 days ahead"
    return None


def on_deferral(rp: Replay, index: int, e: Mapping[str, Any], fits: bool) -> None:
    state = rp.request(index, e)
    if state is None:
        return
    problems = []
    date_problem = _review_date_problem(e)
    if date_problem:
        problems.append(date_problem)
    holder = state.facts["holder"]
    if e["action"] == "deferred":
        chain = rp.chain if fits else None
        if chain is None:
            problems.append(
                f"does not follow the releases of {state.where()}: a deferral is decided with "
                "the release"
            )
        else:
            released = close_releases(rp, chain)
            rp.chain = None
            if e["reviewer"] != chain.reviewer:
                problems.append(
                    f"names a reviewer other than the one who released at entry {chain.opened}"
                )
            if e["subjects"] != released:
                problems.append(
                    f"defers {e['subjects']} notice(s), but {released} subject(s) were released"
                )
            problem = rp.register.check_reviewer(e["reviewer"], holder, chain.role)
            if problem:
                problems.append(problem)
        state.deferral, state.deferred, state.deferral_index = "deferred", e["subjects"], index
        state.review_date, state.review_reported = e["review_date"], ""
    else:
        problems += _change(rp, index, e, state)
    for p in problems:
        rp.find(index, "deferral", p)


def _change(rp: Replay, index: int, e: Mapping[str, Any], state: RequestState) -> list[str]:
    if state.deferral != "deferred":
        return [f"is a {e['action']} deferral, but the notices of {state.where()} are not deferred"]
    problems = []
    past = _past_review(state, clock(rp.latest_time, e))
    if past is not None:
        problems.append(
            f"is logged {past:.0f} days after the review date {state.review_date} of the "
            f"deferral at entry {state.deferral_index}; a deferral due for review is lifted "
            f"or renewed within {DEFERRAL_GRACE_DAYS} days of it"
        )
    state.review_date = e["review_date"] if e["action"] == "renewed" else None
    state.review_reported = ""
    problem = rp.register.check_reviewer(e["reviewer"], state.facts["holder"], "release_reviewer")
    if problem:
        problems.append(problem)
    if e["subjects"] != state.deferred:
        problems.append(
            f"counts {e['subjects']} notice(s), but {state.deferred} were deferred at entry "
            f"{state.deferral_index}"
        )
    state.deferral_index = index
    if e["action"] == "lifted":
        state.deferral = "lifted"
        owe(rp, e["request"], state.deferred, index, e["time"])
    return problems


def on_withdrawal(rp: Replay, index: int, e: Mapping[str, Any], fits: bool) -> None:
    state = rp.request(index, e)
    if state is None:
        return
    if state.stage != "decided":
        rp.find(
            index,
            "withdrawal",
            f"withdraws {state.where()}, which is {state.stage}; a request "
            "is withdrawn after its decision and before any review or appeal",
        )
    if e["by"] != state.facts["requester"]:
        rp.find(index, "withdrawal", "is not made by the request's requester")
    state.stage, state.outcome = "withdrawn", "withdrawn"


def on_deletion(rp: Replay, index: int, e: Mapping[str, Any], fits: bool) -> None:
    if not rp.register.is_active(e["holder"]):
        rp.find(index, "deletion", f"holder {e['holder']!r} is not an active organisation")
    if e["records"] < 1:
        rp.find(index, "deletion", "deleted no records; a deletion certifies what went")
    earlier = rp.agreements.deletions.get(e["certificate"])
    if earlier is not None:
        # One deletion, one certificate: logged again only by the destruction it answers,
        # which must be the very next entry (judged there, or at the next entry).
        rp.agreements.repeated = [index, e["certificate"], earlier[0]]


def check_repeated(rp: Replay, index: int) -> None:
    """After entry ``index``: a deletion that repeated an earlier one's certificate and
    was not followed at once by the destruction registering it is a finding."""
    repeated = rp.agreements.repeated
    if repeated is not None and repeated[0] < index:
        first = repeated[2]
        rp.find(
            repeated[0],
            "deletion",
            f"holds the certificate of an earlier deletion (entry {first}); one "
            "certificate certifies one deletion, logged again only by the destruction it "
            "answers, as the next entry",
        )
        rp.agreements.repeated = None
