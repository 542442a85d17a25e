"""``review``, ``release`` and ``appeal`` entries: nothing leaves without a named human.

Contract §6: every ``release`` follows, for the same request, its ``request``, ``decision``
and ``review`` entries (or an overturned appeal against a refused review); names a reviewer
whose logged roles at that time include ``release_reviewer`` at the holder (the appeal
reviewer, on appeal); repeats the request's facts; and releases only categories that the
decision permitted, that the review approved, and that the policy in force permits on the
holder's record of those subjects. Each release is also read against the pledge by the
independent pure-Python oracle (:func:`carewall.policy.pledge_violations`). A release to an
immigration-enforcement body is always a failure, and counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from carewall.audit.clock import clock, days
from carewall.audit.decisions import decide, groups_of
from carewall.audit.register import IMMIGRATION
from carewall.audit.requests import FACT_FIELDS, Chain, Facts3, RequestState
from carewall.deadlines import APPEAL_DAYS
from carewall.errors import CarewallError
from carewall.policy import pledge_violations

if TYPE_CHECKING:
    from carewall.audit.replay import Replay

__all__ = ["close_releases", "on_appeal", "on_release", "on_review"]


def _outside(cats: list[str], allowed: list[str] | None) -> list[str]:
    return sorted(set(cats) - set(allowed or ()))


def _check_released_review(state: RequestState, e: Mapping[str, Any]) -> list[str]:
    problems = []
    cats = list(e["categories"])
    if not cats:
        problems.append("releases but approves no category")
    if state.permitted is None:
        problems.append(
            f"cannot be checked: the request at entry {state.index} was not decided again"
        )
    elif _outside(cats, state.permitted):
        problems.append(
            f"approves {', '.join(_outside(cats, state.permitted))}, which the decision at entry "
            f"{state.decision_index} does not permit"
        )
    held, twice = groups_of(e["groups"])
    if twice:
        problems.append("field 'groups' lists the same facts twice")
    if sum(held.values()) != state.subjects:
        problems.append(
            f"field 'groups' does not add up to the {state.subjects} subject(s) of the request "
            f"at entry {state.index}"
        )
    # Each subject whose facts differ between the claim and the holder's record is a
    # correction: at least this many, at most every subject.
    fewest = state.subjects - sum(min(n, held.get(k, 0)) for k, n in state.claimed.items())
    if not fewest <= e["corrected"] <= state.subjects:
        problems.append(
            f"field 'corrected' cannot be: the holder's record differs from the claim at entry "
            f"{state.index} for at least {fewest} of its {state.subjects} subject(s)"
        )
    return problems


def on_review(rp: Replay, index: int, e: Mapping[str, Any], fits: bool) -> None:
    state = rp.request(index, e)
    if state is None:
        return
    after_appeal = rp.chain if fits and rp.chain is not None else None
    if after_appeal is not None:
        _review_after_appeal(rp, index, e, state, after_appeal)
        return
    if state.stage != "decided" or state.outcome != "review":
        rp.find(
            index,
            "review",
            f"reviews {state.where()}, which is {state.stage} "
            f"({state.outcome or 'undecided'}); only a request the decision sent for review, "
            "and not yet reviewed, can be reviewed",
        )
        return
    problem = rp.register.check_reviewer(e["reviewer"], state.facts["holder"], "release_reviewer")
    if problem:
        rp.find(index, "review", problem)
    if e["outcome"] == "released":
        for p in _check_released_review(state, e):
            rp.find(index, "review", p)
        state.held = groups_of(e["groups"])[0]
        rp.chain = Chain(
            "release", e["request"], index, "review", e["reviewer"], "release_reviewer"
        )
        rp.chain.corrected = e["corrected"]
    elif e["categories"] or e["groups"] or e["corrected"]:
        rp.find(
            index, "review", "refuses, so its categories and groups must be empty and 'corrected' 0"
        )
    state.stage, state.outcome, state.reviewer = "reviewed", e["outcome"], e["reviewer"]
    state.review_index, state.review_categories = index, list(e["categories"])


def _review_after_appeal(
    rp: Replay, index: int, e: Mapping[str, Any], state: RequestState, appeal: Chain
) -> None:
    """The holder's record written by the appeal reviewer who overturned a refused review."""
    if e["outcome"] != "released":
        rp.find(
            index,
            "review",
            f"follows the overturned appeal at entry {appeal.opened}, so it must release",
        )
    if e["reviewer"] != appeal.reviewer:
        rp.find(
            index,
            "review",
            f"names a reviewer other than the one who overturned the "
            f"appeal at entry {appeal.opened}",
        )
    problem = rp.register.check_reviewer(e["reviewer"], state.facts["holder"], "appeal_reviewer")
    if problem:
        rp.find(index, "review", problem)
    for p in _check_released_review(state, e):
        rp.find(index, "review", p)
    state.held = groups_of(e["groups"])[0]
    state.review_index, state.review_categories = index, list(e["categories"])
    rp.chain = Chain("release", e["request"], index, "review", e["reviewer"], "appeal_reviewer")
    rp.chain.corrected = e["corrected"]


def _immigration(rp: Replay, index: int, e: Mapping[str, Any]) -> None:
    to_immigration = (
        e["recipient_function"] == IMMIGRATION
        or e["requester_function"] == IMMIGRATION
        or rp.register.is_immigration(e["recipient"])
        or rp.register.is_immigration(e["requester"])
    )
    if to_immigration:
        rp.totals.releases_to_immigration += 1
        rp.find(index, "release", "releases data to an immigration-enforcement body")
    rules = tuple(pledge_violations(e))
    if rules:
        rp.find(index, "release", "breaks the pledge", rules)


def _check_facts(state: RequestState, e: Mapping[str, Any]) -> list[str]:
    problems = []
    differ = [f for f in FACT_FIELDS if e[f] != state.facts[f]]
    if differ:
        problems.append(
            f"field(s) {', '.join(differ)} differ from the request at entry {state.index}"
        )
    if e["recipient"] != e["requester"] or e["recipient_function"] != e["requester_function"]:
        problems.append("the recipient is not the requester")
    if e["victims_or_witnesses"] != (e["subjects"] if e["is_victim_or_witness"] else 0):
        problems.append(
            "field 'victims_or_witnesses' is not the subjects' count for a victim or witness "
            "group, or 0 otherwise"
        )
    return problems


def _check_fresh(rp: Replay, state: RequestState, e: Mapping[str, Any]) -> str | None:
    """Decide the release's group again with the policy in force now."""
    engine = rp.policy.engine
    if engine is None:
        return f"cannot be decided again: {rp.policy.missing()}"
    if e["policy"] != engine.policy_hash:
        return f"field 'policy' is not the policy in force (entry {rp.policy.index})"
    facts: Facts3 = (e["is_child"], e["is_victim_or_witness"], e["consent"])
    try:
        fresh = decide(rp, engine, e, list(e["categories"]), [facts], state.subjects)
    except CarewallError as err:
        return f"cannot be decided again: {err.message}"
    refused = _outside(list(e["categories"]), fresh.permitted)
    if refused or fresh.errors:
        rules = sorted({r for c in refused for r in fresh.categories[c].rules})
        return (
            f"releases {', '.join(refused) or 'categories'} that the policy in force refuses "
            f"on the holder's record of these subjects ({', '.join(rules) or 'evaluation error'})"
        )
    return None


def on_release(rp: Replay, index: int, e: Mapping[str, Any], fits: bool) -> None:
    rp.totals.releases += 1
    _immigration(rp, index, e)
    state = rp.request(index, e)
    if state is None:
        return
    chain = rp.chain if fits else None
    if chain is None:
        rp.find(
            index,
            "release",
            "is not preceded by a review that released, or an overturned appeal against a "
            f"refused review, of {state.where()}; nothing is released without a named reviewer",
        )
    problems = _check_facts(state, e)
    holder = state.facts["holder"]
    if chain is not None and e["reviewer"] != chain.reviewer:
        problems.append(f"names a reviewer other than the one who released at entry {chain.opened}")
    problem = rp.register.check_reviewer(
        e["reviewer"], holder, chain.role if chain else "release_reviewer"
    )
    if problem:
        problems.append(problem)
    cats = list(e["categories"])
    if chain is not None and chain.via == "review" and _outside(cats, state.review_categories):
        problems.append(
            f"releases {', '.join(_outside(cats, state.review_categories))}, which the review "
            f"at entry {state.review_index} did not approve"
        )
    if state.permitted is None:
        problems.append(
            f"cannot be checked: the request at entry {state.index} was not decided again"
        )
    elif _outside(cats, state.permitted):
        problems.append(
            f"releases {', '.join(_outside(cats, state.permitted))}, which the decision at "
            f"entry {state.decision_index} does not permit"
        )
    fresh = _check_fresh(rp, state, e)
    if fresh:
        problems.append(fresh)
    facts: Facts3 = (e["is_child"], e["is_victim_or_witness"], e["consent"])
    state.released += e["subjects"]
    if state.released > state.subjects:
        problems.append(
            f"brings the subjects released to {state.released}, more than the {state.subjects} "
            f"of the request at entry {state.index}"
        )
    state.released_by_facts[facts] = state.released_by_facts.get(facts, 0) + e["subjects"]
    over = state.released_by_facts[facts] > state.held.get(facts, 0)
    if chain is not None and chain.via == "review" and over:
        problems.append(
            f"releases more subjects with these facts than the holder's record at entry "
            f"{state.review_index} holds"
        )
    if chain is not None:
        problems += _beyond_subjects(state, chain, facts, cats, e["subjects"])
        key = (facts, tuple(sorted(cats)))
        if key in chain.seen:
            problems.append(f"repeats a release of the same group made since entry {chain.opened}")
        chain.seen.add(key)
        if chain.releases and e["file"] != chain.file:
            problems.append(
                f"names a file other than the release at entry {chain.releases[0]}: one "
                "review releases one file"
            )
        chain.file = e["file"]
        chain.releases.append(index)
        chain.remaining += e["subjects"]
    for p in problems:
        rp.find(index, "release", p)
    state.release_indices.append(index)
    state.release_reviewer = e["reviewer"]
    state.release_categories = sorted(set(state.release_categories) | set(cats))
    if state.outcome != "released":
        state.outcome = "released"


def _beyond_subjects(
    state: RequestState, chain: Chain, facts: Facts3, cats: list[str], count: int
) -> list[str]:
    """Categories released to more subjects than the decision permitted them to.

    The decision was made on each claimed group; the holder's record may move a subject
    to other facts (``corrected`` of them), but a category released to a subject must
    have been permitted for the facts claimed for that subject (contract §6: "only
    categories that the decision permitted for those subjects"), whatever the policy
    in force says later. The log does not say which subject moved where, so the check is
    on counts, the most an honest log can release: of the group with these facts, those
    not corrected (at most as many as were claimed with them) where the decision permits
    the category for these facts, plus at most ``corrected`` from claimed groups it
    permits; and in all, at most the subjects of claimed groups it permits.
    """
    by_facts = state.permitted_by_facts
    if by_facts is None:
        return []  # not replayed (a finding already), or a state file from before
    problems = []
    held = state.held.get(facts, 0)
    for cat in cats:
        chain.by_category[cat] = chain.by_category.get(cat, 0) + count
        key = (facts, cat)
        chain.by_facts_category[key] = chain.by_facts_category.get(key, 0) + count
        allowed = [f for f, permits in by_facts.items() if cat in permits]
        in_all = sum(state.claimed.get(f, 0) for f in allowed)
        uncorrected = min(state.claimed.get(facts, 0), held) if facts in allowed else 0
        moved = sum(state.claimed.get(f, 0) for f in allowed if f != facts)
        here = uncorrected + min(chain.corrected, held, moved)
        if chain.by_facts_category[key] > here or chain.by_category[cat] > in_all:
            problems.append(
                f"releases {cat} to more subjects than the decision at entry "
                f"{state.decision_index} permitted it for: at most {min(here, in_all)} of "
                "these subjects could have been claimed with facts it permits"
            )
    return problems


def close_releases(rp: Replay, chain: Chain) -> int:
    """The releases of ``chain`` are all read: check them as a whole; return the subjects."""
    state = rp.requests[chain.request]
    if chain.via == "review":
        union = sorted({c for (_, cats) in chain.seen for c in cats})
        if union != sorted(state.review_categories):
            rp.find(
                chain.opened,
                "review",
                "approves categories other than those its releases (entries "
                f"{', '.join(str(i) for i in chain.releases)}) send",
            )
    return chain.remaining


def on_appeal(rp: Replay, index: int, e: Mapping[str, Any], fits: bool) -> None:
    state = rp.request(index, e)
    if state is None:
        return
    if e["stage"] == "lodged":
        _lodge(rp, index, e, state)
    else:
        _decide_appeal(rp, index, e, state)


def _lodge(rp: Replay, index: int, e: Mapping[str, Any], state: RequestState) -> None:
    if e["reviewer"] is not None:
        rp.find(index, "appeal", "is lodged, so field 'reviewer' must be null")
    if e["by"] == "requester":
        ok = state.stage in ("decided", "reviewed") and state.outcome == "refused"
        why = "the requester may appeal a refused decision or a refused review, once"
    else:
        # Each subject released may appeal the release once; their appeals wait their turn.
        ok = state.outcome == "released" and (
            state.stage in ("reviewed", "upheld", "overturned")
            or (state.stage == "appealed" and state.appeal_by == "subject")
        )
        why = "a subject may appeal a release, once"
        if ok and state.subject_appeals >= state.released:
            rp.find(
                index,
                "appeal",
                f"is one more subject's appeal of {state.where()} than it released subjects "
                f"({state.released}); each subject may appeal a release once",
            )
            return
    if not ok:
        rp.find(
            index,
            "appeal",
            f"appeals {state.where()}, which is {state.stage} "
            f"({state.outcome or 'undecided'}); {why}",
        )
        return
    since = clock(rp.latest_time, e)
    if e["by"] == "subject":
        state.subject_appeals += 1
        if state.stage == "appealed":  # decided after the ones lodged before it
            state.appeals_waiting.append([index, since])
            return
    state.stage, state.appeal_by, state.appeal_index = "appealed", e["by"], index
    state.appeal_prior = state.outcome
    state.appeal_since, state.appeal_reported = since, ""


def _next_appeal(state: RequestState) -> bool:
    """The oldest subject's appeal waiting becomes the one to decide (False: none waits)."""
    if not state.appeals_waiting:
        return False
    index, since = state.appeals_waiting.pop(0)
    state.stage, state.appeal_index, state.appeal_prior = "appealed", index, "released"
    state.appeal_since, state.appeal_reported = since, ""
    return True


def _decide_appeal(rp: Replay, index: int, e: Mapping[str, Any], state: RequestState) -> None:
    if state.stage != "appealed" or e["by"] != state.appeal_by:
        rp.find(
            index,
            "appeal",
            f"decides an appeal by the {e['by']} that was not lodged for {state.where()}",
        )
        return
    late = days(state.appeal_since, clock(rp.latest_time, e)) if state.appeal_since else 0.0
    if late > APPEAL_DAYS and not state.appeal_reported:  # else found at an earlier end
        rp.find(
            index,
            "appeal",
            f"decides the appeal at entry {state.appeal_index} {late:.0f} days after it was "
            f"lodged; an appeal is decided within {APPEAL_DAYS} days",
        )
    state.appeal_since = state.appeal_reported = ""
    reviewer = e["reviewer"]
    if reviewer is None:
        rp.find(index, "appeal", "decides an appeal, so field 'reviewer' must name the reviewer")
    else:
        problem = rp.register.check_reviewer(reviewer, state.facts["holder"], "appeal_reviewer")
        if problem:
            rp.find(index, "appeal", problem)
        if reviewer == state.reviewer:
            rp.find(
                index,
                "appeal",
                f"is decided by the reviewer of entry {state.review_index}; an appeal needs "
                "someone else",
            )
    state.stage = "upheld" if e["stage"] == "upheld" else "overturned"
    if e["stage"] == "upheld":
        _next_appeal(state)
        return
    if state.appeal_prior == "released":
        state.outcome = "refused"  # the release was wrong; appeals waiting are still decided
        _next_appeal(state)
    elif state.review_index is None:
        rp.find(
            index,
            "appeal",
            f"overturns the refused decision at entry {state.decision_index}, which permitted "
            "nothing; only a refused review can be overturned into a release",
        )
    else:
        # the release's review, with the holder's record, must come next
        rp.chain = Chain("review", e["request"], index, "appeal", reviewer or "", "appeal_reviewer")
