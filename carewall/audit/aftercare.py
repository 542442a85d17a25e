"""``notice``, ``deferral``, ``withdrawal`` and ``deletion`` entries (contract §3, §6).

Each subject released is owed a notice, unless the holder's reviewer defers them (a
``deferral`` ``deferred`` entry right after the releases, with a review date at most 90
days ahead); a deferral is renewed or lifted by a release reviewer at the holder, and a
lift makes the deferred notices owed. The notices are written after the release by a
background job, so they need not follow it directly: the replay counts what each request
still owes, fails a notice nobody owes, and fails notices logged more than
:data:`NOTICE_DAYS` after the entry that made them due, or still missing that long after
it (judged by the entries' times, at the end of the signed log). A request is withdrawn
by its requester after its decision and before any review or appeal. A deletion names a
registered holder; the rest of its shape is checked by the schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from carewall.audit.releases import close_releases
from carewall.audit.requests import RequestState

if TYPE_CHECKING:
    from carewall.audit.replay import Replay

__all__ = [
    "NOTICE_DAYS",
    "check_overdue",
    "on_deferral",
    "on_deletion",
    "on_notice",
    "on_withdrawal",
    "owe",
]

MAX_DEFERRAL_DAYS = 90
NOTICE_DAYS = 7  # a notice owed is in the log within this many days of becoming due


def _when(time: str) -> datetime | None:
    try:
        return datetime.fromisoformat(time.replace("Z", "+00:00"))
    except ValueError:
        return None


def _days(since: str, until: str) -> float:
    a, b = _when(since), _when(until)
    return 0.0 if a is None or b is None else (b - a).total_seconds() / 86400


def owe(rp: Replay, request_id: str, n: int, index: int, time: str) -> None:
    """``n`` more notices of ``request_id`` became due at entry ``index`` (at ``time``)."""
    state = rp.requests.get(request_id)
    if state is None or n <= 0:
        return
    if state.owed == 0:
        state.owed_since, state.owed_index = time, index
    state.owed += n


def check_overdue(rp: Replay, size: int) -> None:
    """At the end of the signed log: notices due for longer than NOTICE_DAYS are missing."""
    for state in rp.requests.values():
        if state.owed > 0 and _days(state.owed_since, rp.latest_time) > NOTICE_DAYS:
            rp.find(
                size,
                "notice",
                f"{state.owed} notice(s) of {state.where()}, due since entry "
                f"{state.owed_index}, are not in the log {NOTICE_DAYS} days later",
            )
            state.owed_since = rp.latest_time  # reported; counted again after NOTICE_DAYS


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
        late = _days(state.owed_since, e["time"])
        if late > NOTICE_DAYS:
            rp.find(
                index,
                "notice",
                f"is logged {late:.0f} days after entry {state.owed_index} made it due; a "
                f"notice is due within {NOTICE_DAYS} days",
            )
            state.owed_since = e["time"]  # reported once per NOTICE_DAYS of lateness
        state.owed -= 1
        if state.owed == 0:
            state.owed_since, state.owed_index = "", -1
    if e["subject"] in state.notices:
        rp.find(
            index, "notice", f"tells the same subject of the request at entry {state.index} twice"
        )
    state.notices.add(e["subject"])


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
    else:
        problems += _change(rp, index, e, state)
    for p in problems:
        rp.find(index, "deferral", p)


def _change(rp: Replay, index: int, e: Mapping[str, Any], state: RequestState) -> list[str]:
    if state.deferral != "deferred":
        return [f"is a {e['action']} deferral, but the notices of {state.where()} are not deferred"]
    problems = []
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
