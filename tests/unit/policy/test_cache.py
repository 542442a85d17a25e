"""The decision cache gives the same decision as Cedar asked afresh, whatever changes.

A differential test: random requests are decided by an engine with a cache (shared across
examples, so later examples hit entries that earlier ones made) and by an engine without
one; the two decisions must be equal in every field. It can fail: a cache that ignores
the policy is caught below.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_helpers import numbered

from carewall.errors import InputError
from carewall.policy import DEFAULT_REGISTER_PATH, Engine, Register, load_register, parse_request
from carewall.policy.cache import DecisionCache
from carewall.policy.decision import EVALUATION_ERROR
from carewall.policy.facts import facts_of
from carewall.policy.register import parse_register
from carewall.vocab import vocabulary

VOCAB = vocabulary()
REGISTER = load_register(DEFAULT_REGISTER_PATH)
ORGS = sorted(REGISTER.organisations)
CO = {"reference": "T1", "court": "Snaresbrook Crown Court", "date": "2026-11-02"}
OFFENCES = [None, "theft_act_1968_s1", "immigration_act_1971_s24", "made_up_act_2020_s1"]
# A police request for a theft investigation: everything but its subjects and categories.
THEFT = {
    "reference": "R-1",
    "requester": "met-police",
    "holder": "whittington-health",
    "purpose": "prevention_detection_of_crime",
    "legal_basis": "dpa2018_sch2_p1_para2_crime",
    "offence": "theft_act_1968_s1",
}
# A local policy that permits more than the default: health records for any court order.
COURT_POLICY = (
    Engine.default_text()
    + """
@id("local/court-health")
@legal_basis("court_order")
@rationale("A court ordered it.")
permit (principal, action, resource == Category::"health_record")
when { context.court_order };
"""
)
CACHED = Engine.load()
PLAIN = Engine.load()
PLAIN.cache = None
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    # Small choices, so that examples repeat facts and the cache is hit as well as missed.
    basis = draw(st.sampled_from([*VOCAB["legal_basis"][:4], "court_order"]))
    court = draw(st.booleans()) or basis == "court_order"
    offence = draw(st.sampled_from(OFFENCES))
    if offence is None and basis == "dpa2018_sch2_p1_para2_crime":
        offence = "theft_act_1968_s1"
    subject = st.fixed_dictionaries(
        {"ref": st.just("s"), "is_child": st.booleans(), "is_victim_or_witness": st.booleans()},
        optional={"consent": st.booleans()},
    )
    return {
        "reference": "R-1",
        "requester": draw(st.sampled_from(ORGS[:6])),
        "holder": draw(st.sampled_from(ORGS[:4])),
        "purpose": draw(st.sampled_from(VOCAB["purpose"][:4])),
        "legal_basis": basis,
        "offence": offence,
        "court_order": CO if court else None,
        "subjects": numbered(draw(st.lists(subject, min_size=1, max_size=4))),
        "categories": draw(
            st.lists(st.sampled_from(VOCAB["category"]), min_size=1, max_size=5, unique=True)
        ),
        "onward_recipients": draw(
            st.lists(st.sampled_from(VOCAB["function"][:3]), max_size=1, unique=True)
        ),
    }


def _both(cached: Engine, plain: Engine, doc: dict[str, Any], register: Register) -> None:
    facts, subjects = facts_of(parse_request(doc, register))
    want = plain.decide_uncached(facts, subjects, register)
    assert cached.decide_facts(facts, subjects, register) == want
    assert cached.decide_facts(facts, subjects, register) == want  # now from the cache


@SETTINGS
@given(requests())
def test_cached_decisions_equal_uncached(doc: dict[str, Any]) -> None:
    _both(CACHED, PLAIN, doc, REGISTER)


@SETTINGS
@given(requests(), st.integers(min_value=1, max_value=100_000))
def test_the_number_of_people_is_part_of_the_key(doc: dict[str, Any], count: int) -> None:
    facts, subjects = facts_of(parse_request(doc, REGISTER))
    want = PLAIN.decide_uncached(facts, subjects, REGISTER, count)
    assert CACHED.decide_facts(facts, subjects, REGISTER, count) == want


@SETTINGS
@given(requests())
def test_a_policy_change_is_a_new_generation(doc: dict[str, Any]) -> None:
    # One cache shared by two policies: the policy hash keeps their answers apart.
    shared = DecisionCache()
    a, b = Engine.load(), Engine.load(COURT_POLICY)
    a.cache = b.cache = shared
    _both(a, PLAIN, doc, REGISTER)
    _both(b, _plain(COURT_POLICY), doc, REGISTER)
    _both(a, PLAIN, doc, REGISTER)


def _plain(text: str | None = None) -> Engine:
    engine = Engine.load(text)
    engine.cache = None
    return engine


def _changed_register() -> Register:
    # The same ids, but the police now hold a different function: every answer may change.
    text = DEFAULT_REGISTER_PATH.read_text()
    police = REGISTER.organisations["met-police"].function
    other = next(f for f in VOCAB["function"] if f not in (police, "immigration_enforcement"))
    marker = 'id = "met-police"'
    head, tail = text.split(marker, 1)
    tail = tail.replace(f'function = "{police}"', f'function = "{other}"', 1)
    changed = parse_register(head + marker + tail)
    assert changed.organisations["met-police"].function == other
    return changed


CHANGED = _changed_register()


@SETTINGS
@given(requests())
def test_a_register_change_is_a_new_generation(doc: dict[str, Any]) -> None:
    engine = Engine.load()
    _both(engine, PLAIN, doc, REGISTER)
    _both(engine, PLAIN, doc, CHANGED)
    _both(engine, PLAIN, doc, REGISTER)


class _IgnoresPolicy(DecisionCache):
    """A broken cache: it keys on the register only, as if the policy never changed."""

    def generation(self, policy_hash: str, register: Register) -> int:
        return super().generation("any policy", register)


def test_the_differential_check_catches_a_cache_that_ignores_the_policy() -> None:
    stale = _IgnoresPolicy()
    before, after = Engine.load(), Engine.load(COURT_POLICY)
    before.cache = after.cache = stale
    plain_after = _plain(COURT_POLICY)
    doc = {
        "reference": "R-1",
        "requester": "met-police",
        "holder": "whittington-health",
        "purpose": "prevention_detection_of_crime",
        "legal_basis": "court_order",
        "court_order": CO,
        "subjects": [{"ref": "s", "is_child": False, "is_victim_or_witness": False}],
        "categories": ["health_record"],
    }
    facts, subjects = facts_of(parse_request(doc, REGISTER))
    old = before.decide_facts(facts, subjects, REGISTER)
    new = plain_after.decide_uncached(facts, subjects, REGISTER)
    assert old.categories != new.categories  # the policy change matters to this request
    assert after.decide_facts(facts, subjects, REGISTER) != new  # and the stale cache shows it


def test_an_evaluation_error_is_never_cached() -> None:
    # Overflow on more than one person: Cedar reports an error and the engine refuses.
    overflow = (
        Engine.default_text()
        + """
@id("local/overflow")
@rationale("Errors for more than one person.")
forbid (principal, action, resource)
when { context.subjects * 4611686018427387904 > 0 };
"""
    )
    engine = Engine.load(overflow)
    doc = {
        **THEFT,
        "subjects": [
            {"ref": f"s{i}", "is_child": False, "is_victim_or_witness": False} for i in range(2)
        ],
        "categories": ["name"],
    }
    facts, subjects = facts_of(parse_request(doc, REGISTER))
    for _ in range(2):
        d = engine.decide_facts(facts, subjects, REGISTER)
        assert d.errors
        assert d.categories["name"].rules == (EVALUATION_ERROR,)
    assert engine.cache is not None and engine.cache.hits == 0


def test_the_demo_year_decides_the_same_both_ways() -> None:
    from carewall.cli.demo_scenarios import document, plan_year  # the demo's request stream

    rng = random.Random(2027)
    cached = Engine.load()
    plan = plan_year(scale=0.2)
    for n, (scenario, when) in enumerate(plan, 1):
        doc = document(rng, scenario, n, when)
        for s in doc["subjects"]:
            s.pop("contact", None)  # the service keeps contacts apart; the policy never sees them
        try:
            facts, subjects = facts_of(parse_request(doc, REGISTER))
        except InputError:  # a court order dated after today (the demo runs its own clock)
            continue
        assert cached.decide_facts(facts, subjects, REGISTER) == PLAIN.decide_uncached(
            facts, subjects, REGISTER
        ), doc["reference"]
    assert cached.cache is not None and cached.cache.hits > cached.cache.misses


def _doc(categories: list[str], subjects: int = 1) -> dict[str, Any]:
    return {
        **THEFT,
        "subjects": [
            {"ref": f"s{i}", "is_child": i % 2 == 1, "is_victim_or_witness": False}
            for i in range(subjects)
        ],
        "categories": categories,
    }


def test_a_request_partly_answered_asks_cedar_for_the_rest_only() -> None:
    engine = Engine.load()
    cache = engine.cache
    assert cache is not None
    first = facts_of(parse_request(_doc(["name"], subjects=2), REGISTER))
    engine.decide_facts(*first, REGISTER)
    assert (cache.hits, cache.misses) == (0, 2)
    # The same people, one category held and two not, in an order unlike the first's.
    facts, subjects = facts_of(
        parse_request(_doc(["health_record", "name", "nationality"], subjects=2), REGISTER)
    )
    got = engine.decide_facts(facts, subjects, REGISTER)
    assert (cache.hits, cache.misses) == (2, 6)
    assert got == PLAIN.decide_uncached(facts, subjects, REGISTER)
    assert list(got.categories) == ["health_record", "name", "nationality"]
    assert [list(g["categories"]) for g in got.groups] == [list(got.categories)] * 2
    assert engine.decide_facts(facts, subjects, REGISTER) == got
    assert (cache.hits, cache.misses) == (8, 6)


def test_the_cache_starts_again_when_full() -> None:
    facts, subjects = facts_of(parse_request(_doc(["name", "address"]), REGISTER))
    engine = Engine.load()
    engine.cache = DecisionCache(max_entries=3)
    want = PLAIN.decide_uncached(facts, subjects, REGISTER)
    assert engine.decide_facts(facts, subjects, REGISTER) == want  # two answers kept
    other, _ = facts_of(parse_request(_doc(["nationality", "name"]), REGISTER))
    engine.decide_facts(other, subjects, REGISTER)  # one more: three
    engine.cache.hits = engine.cache.misses = 0
    engine.decide_facts(facts, subjects, REGISTER)
    assert engine.cache.hits == 2
    count_two = facts_of(parse_request(_doc(["name", "address"], subjects=2), REGISTER))
    engine.decide_facts(*count_two, REGISTER)  # two more would pass three: start again
    engine.cache.hits = engine.cache.misses = 0
    assert engine.decide_facts(facts, subjects, REGISTER) == want
    assert (engine.cache.hits, engine.cache.misses) == (0, 2)


def test_an_equal_register_read_again_keeps_the_generation() -> None:
    cache = DecisionCache()
    again = load_register(DEFAULT_REGISTER_PATH)
    assert again is not REGISTER
    gen = cache.generation("p", REGISTER)
    assert cache.generation("p", again) == gen
    assert cache.generation("p", REGISTER) == gen
    assert cache.generation("p", CHANGED) != gen
    assert cache.generation("q", CHANGED) != cache.generation("p", CHANGED)
