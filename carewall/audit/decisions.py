"""``request`` and ``decision`` entries: every request decided again, and compared.

A request names registered, active organisations with the functions the register gives
them; its groups are distinct and add up to its counts; its offence is a listed statute id,
``unlisted`` or null (contract §1). The replay decides it again with the policy in force,
from the logged facts alone (:meth:`carewall.policy.Engine.decide_facts`, one subject per
group, counted as the request counts them), and the ``decision`` entry that MUST follow it
directly MUST state the same outcome, categories, rules and policy (contract §4).

A request the service refuses as input is a finding even when it could be decided: the
crime exemption (main or other basis) without an offence, which is what
``pledge/no-immigration-offence`` reads (contract §1), and the ``court_order`` basis without
a court order (contract §3) (:func:`carewall.policy.checks.check_request`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from carewall.audit.requests import FACT_FIELDS, Chain, Decided, Facts3, RequestState
from carewall.errors import CarewallError
from carewall.policy import Decision, Engine, Register
from carewall.policy.checks import CRIME_EXEMPTION
from carewall.policy.facts import RequestFacts, SubjectFacts
from carewall.policy.offences import public_offence

if TYPE_CHECKING:
    from carewall.audit.replay import Replay

__all__ = ["decide", "groups_of", "on_decision", "on_request", "permitted_by_facts"]


def groups_of(groups: list[Mapping[str, Any]]) -> tuple[dict[Facts3, int], bool]:
    """The groups as {facts: count}, and whether any facts appear twice."""
    out: dict[Facts3, int] = {}
    twice = False
    for g in groups:
        key = (g["is_child"], g["is_victim_or_witness"], g["consent"])
        twice = twice or key in out
        out[key] = out.get(key, 0) + g["subjects"]
    return out, twice


_MAX_REMEMBERED = 4096


def decide(
    rp: Replay,
    engine: Engine,
    facts: Mapping[str, Any],
    categories: list[str],
    groups: list[Facts3],
    count: int,
) -> Decision:
    """Decide the logged facts again (CarewallError when they cannot be decided).

    Cedar is deterministic, so the same facts under the same policy and register are
    decided once: many requests of a log share their facts.
    """
    return _decided(rp, engine, facts, categories, groups, count)[0]


def _decided(
    rp: Replay,
    engine: Engine,
    facts: Mapping[str, Any],
    categories: list[str],
    groups: list[Facts3],
    count: int,
) -> Decided:
    # Every request-wide fact a decision reads, lists as tuples (the schema makes the
    # two lists arrays), under the policy and register in force.
    key = (
        engine.policy_hash,
        rp.register.version,
        facts["requester"],
        facts["holder"],
        facts["purpose"],
        facts["legal_basis"],
        tuple(facts["other_bases"]),
        facts["offence"],
        facts["court_order"],
        tuple(facts["onward_recipients"]),
        tuple(categories),
        tuple(groups),
        count,
    )
    remembered = rp.decisions.get(key)
    if remembered is None:
        if len(rp.decisions) >= _MAX_REMEMBERED:
            rp.decisions.clear()
        decision = _decide(engine, rp.register.register(), facts, categories, groups, count)
        by_facts = permitted_by_facts(decision, groups)
        remembered = (decision, decision.to_json(), decision.permitted, by_facts)
        rp.decisions[key] = remembered
    return remembered


def _decide(
    engine: Engine,
    register: Register,
    facts: Mapping[str, Any],
    categories: list[str],
    groups: list[Facts3],
    count: int,
) -> Decision:
    request_facts = RequestFacts(
        requester=facts["requester"],
        holder=facts["holder"],
        purpose=facts["purpose"],
        legal_basis=facts["legal_basis"],
        other_bases=tuple(facts["other_bases"]),
        offence=facts["offence"],
        court_order=facts["court_order"],
        onward_recipients=tuple(facts["onward_recipients"]),
        categories=tuple(categories),
    )
    subjects = [SubjectFacts(*g) for g in groups]
    return engine.decide_facts(request_facts, subjects, register, count=count)


def _check_request(
    rp: Replay, index: int, e: Mapping[str, Any], groups: dict[Facts3, int]
) -> list[str]:
    problems = []
    for who in ("holder", "requester"):
        problem = rp.register.check_org(e[who], e[f"{who}_function"], who)
        if problem:
            problems.append(problem)
    if e["offence"] is not None and public_offence(e["offence"]) != e["offence"]:
        problems.append(
            "field 'offence' names an Act that is not on the packaged list; the log carries "
            "such an offence only as 'unlisted'"
        )
    bases = {e["legal_basis"], *e["other_bases"]}
    if CRIME_EXEMPTION in bases and e["offence"] is None:
        problems.append(
            f"field 'offence' is null, but the request cites the crime exemption "
            f"({CRIME_EXEMPTION}), which needs an offence; the service refuses such a request"
        )
    if "court_order" in bases and e["court_order"] is not True:
        problems.append(
            "field 'court_order' is false, but the request cites the court_order basis, which "
            "needs a court order; the service refuses such a request"
        )
    if sum(groups.values()) != e["subjects"]:
        problems.append("field 'subjects' is not the sum of the groups' subjects")
    victims = sum(n for (_, victim, _), n in groups.items() if victim)
    if victims != e["victims_or_witnesses"]:
        problems.append(
            "field 'victims_or_witnesses' is not the sum of the victim or witness groups"
        )
    return problems


def permitted_by_facts(decision: Decision, groups: list[Facts3]) -> dict[Facts3, list[str]]:
    """What ``decision`` (made with one subject per group of ``groups``) permits each group."""
    out: dict[Facts3, list[str]] = {}
    for part in decision.groups:
        cats = [c for c, a in part["categories"].items() if a["outcome"] == "review"]
        for i in part["subjects"]:
            out[groups[i]] = cats
    return out


def on_request(rp: Replay, index: int, e: Mapping[str, Any], fits: bool) -> None:
    rid = e["request"]
    known = rp.requests.get(rid)
    if known is not None:
        rp.find(index, "request", f"uses the request id of the request at entry {known.index}")
        return
    groups, twice = groups_of(e["groups"])
    problems = _check_request(rp, index, e, groups)
    if twice:
        problems.append("field 'groups' lists the same facts twice")
    for p in problems:
        rp.find(index, "request", p)
    rp.requests[rid] = RequestState(
        index=index,
        facts={f: e[f] for f in FACT_FIELDS},
        categories=list(e["categories"]),
        subjects=e["subjects"],
        claimed=groups,
        subjects_root=e["subjects_root"],
    )
    rp.totals.requests += 1
    rp.chain = Chain("decision", rid, index)
    engine = rp.policy.engine
    if engine is None:
        rp.find(index, "request", f"cannot be decided again: {rp.policy.missing()}")
        return
    try:
        decision, as_json, permitted, by_facts = _decided(
            rp, engine, e, list(e["categories"]), list(groups), e["subjects"]
        )
    except CarewallError as err:
        rp.find(index, "request", f"cannot be decided again: {err.message}")
        return
    if decision.errors:
        rp.find(index, "request", "the logged policy could not be evaluated for it (fail closed)")
        return
    rp.totals.decisions_replayed += 1
    # Shared between the requests decided alike: read, never changed.
    rp.requests[rid].permitted = permitted
    rp.requests[rid].permitted_by_facts = by_facts
    rp.replayed[rid] = as_json


def _difference(logged: Mapping[str, Any], again: Mapping[str, Any]) -> str | None:
    """The first way ``logged`` differs from the decision made again, in words."""
    if (
        logged["categories"] == again["categories"]
        and logged["rules"] == again["rules"]
        and logged["outcome"] == again["outcome"]
        and logged["policy"] == again["policy"]
    ):
        return None  # equal as JSON: every comparison below holds
    if logged["policy"] != again["policy"]:
        return "field 'policy' is not the policy in force"
    if logged["outcome"] != again["outcome"]:
        return f"outcome {logged['outcome']!r}, but deciding again gives {again['outcome']!r}"
    cats_l, cats_a = logged["categories"], again["categories"]
    if set(cats_l) != set(cats_a):
        return "field 'categories' does not name the request's categories"
    for cat in sorted(cats_a):
        got, want = cats_l[cat], cats_a[cat]
        if got["outcome"] != want["outcome"] or list(got["rules"]) != list(want["rules"]):
            return (
                f"category {cat!r} is {got['outcome']} by {', '.join(got['rules'])}, but deciding "
                f"again gives {want['outcome']} by {', '.join(want['rules'])}"
            )
    if list(logged["rules"]) != list(again["rules"]):
        return (
            f"field 'rules' is {', '.join(logged['rules'])}, but deciding again gives "
            f"{', '.join(again['rules'])}"
        )
    return None


def on_decision(rp: Replay, index: int, e: Mapping[str, Any], fits: bool) -> None:
    state = rp.request(index, e)
    if state is None:
        return
    if state.stage != "received":
        rp.find(
            index,
            "decision",
            f"decides again the request at entry {state.index}, already decided at entry "
            f"{state.decision_index}",
        )
        return
    if not fits:
        rp.find(index, "decision", f"does not come right after its request (entry {state.index})")
    else:
        rp.chain = None
    state.stage, state.outcome, state.decision_index = "decided", e["outcome"], index
    again = rp.replayed.pop(e["request"], None)
    if again is None:
        rp.find(
            index,
            "decision",
            f"cannot be compared: the request at entry {state.index} was not decided again",
        )
        return
    diff = _difference(e, again)
    if diff:
        rp.find(
            index,
            "decision",
            f"differs from the request at entry {state.index} decided again: {diff}",
        )
    else:
        rp.totals.decisions_matched += 1
