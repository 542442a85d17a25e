"""``notice``, ``deferral``, ``withdrawal`` and ``deletion`` entries (contract §3, §6).

The notices of a release are written with it, one per subject released, unless the
holder's reviewer defers them (a ``deferral`` ``deferred`` entry right after the releases,
with a review date at most 90 days ahead); a deferral is renewed or lifted by a release
reviewer at the holder, and the notices follow the lift directly. A request is withdrawn
by its requester after its decision and before any review or appeal. A deletion names a
registered holder; the rest of its shape is checked by the schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from carewall.audit.releases import close_releases
from carewall.audit.requests import Chain, RequestState

if TYPE_CHECKING:
    from carewall.audit.replay import Replay

__all__ = ["on_deferral", "on_deletion", "on_notice", "on_withdrawal"]

MAX_DEFERRAL_DAYS = 90


def on_notice(rp: Replay, index: int, e: Mapping[str, Any], fits: bool) -> None:
    state = rp.request(index, e)
    if state is None:
        return
    chain = rp.chain if fits else None
    if chain is None:
        rp.find(
            index,
            "notice",
            "is not among the notices of a release or of a lifted deferral of "
            f"{state.where()}; no notice is sent while deferred",
        )
    else:
        if chain.kind == "release":
            chain = Chain(
                "notices", chain.request, chain.opened, remaining=close_releases(rp, chain)
            )
        chain.remaining -= 1
        rp.chain = chain if chain.remaining > 0 else None
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
        rp.chain = Chain("notices", e["request"], index, remaining=state.deferred)
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
