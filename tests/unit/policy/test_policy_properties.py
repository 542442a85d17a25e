"""Property-based checks: the pledge always wins, and Cedar agrees with the Python oracle."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_helpers import numbered

from carewall.policy import (
    DEFAULT_REGISTER_PATH,
    Engine,
    load_register,
    parse_request,
    pledge_violations,
)
from carewall.policy.offences import public_offence
from carewall.vocab import vocabulary

VOCAB = vocabulary()
REGISTER = load_register(DEFAULT_REGISTER_PATH)
ENGINE = Engine.load()
ORGS = sorted(REGISTER.organisations)
IMMIGRATION_OFFENCES = [
    f + suffix for f in VOCAB["immigration_offence"] for suffix in ("", "a", "_1", "_1_b", "b_2")
]
OTHER_OFFENCES = [
    "theft_act_1968_s1",
    "immigration_act_1971_s25",  # facilitation: a crime, not a status offence
    "immigration_act_1971_s2",
    "made_up_act_2020_s1",  # an Act not on the list: logged and decided as "unlisted"
]
NEVER = {"nationality", "country_of_birth", "immigration_status"}
CO = {"reference": "T1", "court": "Snaresbrook Crown Court", "date": "2026-11-02"}


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    basis = draw(st.sampled_from(VOCAB["legal_basis"]))
    other_bases = draw(st.lists(st.sampled_from(VOCAB["legal_basis"]), max_size=3, unique=True))
    bases = {basis, *other_bases}
    court = draw(st.booleans()) or "court_order" in bases
    offence = draw(st.sampled_from([None, *OTHER_OFFENCES, *IMMIGRATION_OFFENCES]))
    if offence is None and "dpa2018_sch2_p1_para2_crime" in bases:
        offence = "theft_act_1968_s1"
    subjects = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "ref": st.just("s"),
                    "is_child": st.booleans(),
                    "is_victim_or_witness": st.booleans(),
                },
                optional={"consent": st.booleans()},
            ),
            min_size=1,
            max_size=5,
        ).map(numbered)
    )
    return {
        "reference": "R-1",
        "requester": draw(st.sampled_from(ORGS)),
        "holder": draw(st.sampled_from(ORGS)),
        "purpose": draw(st.sampled_from(VOCAB["purpose"])),
        "legal_basis": basis,
        "other_bases": other_bases,
        "offence": offence,
        "court_order": CO if court else None,
        "subjects": subjects,
        "categories": draw(
            st.lists(st.sampled_from(VOCAB["category"]), min_size=1, max_size=6, unique=True)
        ),
        "onward_recipients": draw(
            st.lists(st.sampled_from(VOCAB["function"]), max_size=2, unique=True)
        ),
    }


def _facts(doc: dict[str, Any], group: dict[str, bool] | None = None) -> dict[str, Any]:
    """The facts a ledger entry carries; with ``group``, one group's subject facts."""
    out: dict[str, Any] = {
        "holder_function": REGISTER.organisations[doc["holder"]].function,
        "requester_function": REGISTER.organisations[doc["requester"]].function,
        "purpose": doc["purpose"],
        "legal_basis": doc["legal_basis"],
        "other_bases": doc["other_bases"],
        "offence": public_offence(doc["offence"]),
        "court_order": doc["court_order"] is not None,
        "onward_recipients": doc["onward_recipients"],
        "categories": doc["categories"],
        "subjects": len(doc["subjects"]),
        "victims_or_witnesses": sum(s["is_victim_or_witness"] for s in doc["subjects"]),
    }
    if group is not None:
        out |= group
    return out


SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(requests())
def test_immigration_triggers_are_always_refused_and_named(doc: dict[str, Any]) -> None:
    d = ENGINE.decide(parse_request(doc, REGISTER), REGISTER)
    facts = _facts(doc)
    bases = {doc["legal_basis"], *doc["other_bases"]}
    triggers = {
        "pledge/no-immigration-recipient": facts["requester_function"] == "immigration_enforcement",
        "pledge/no-immigration-purpose": doc["purpose"]
        in ("immigration_enforcement", "immigration_control"),
        "pledge/no-immigration-exemption": "dpa2018_sch2_p1_para4_immigration" in bases,
        "pledge/no-immigration-offence": doc["offence"] in IMMIGRATION_OFFENCES,
        "pledge/no-onward-immigration": "immigration_enforcement" in doc["onward_recipients"],
    }
    for rule, fired in triggers.items():
        if fired:
            assert d.outcome == "refused"
            assert d.permitted == []
            for cat in doc["categories"]:
                assert rule in d.categories[cat].rules
    for cat in NEVER & set(doc["categories"]):
        assert d.categories[cat].outcome == "refused"
        assert "pledge/never-nationality" in d.categories[cat].rules
    assert not d.errors


@SETTINGS
@given(requests())
def test_cedar_agrees_with_python_oracle(doc: dict[str, Any]) -> None:
    """Group by group (children, victims, consent), the two readings name the same rules."""
    d = ENGINE.decide(parse_request(doc, REGISTER), REGISTER)
    assert d.groups
    for g in d.groups:
        fired = {r for c in g["categories"].values() for r in c["rules"] if r.startswith("pledge/")}
        assert fired == set(pledge_violations(_facts(doc, g["facts"]))), g["facts"]


@SETTINGS
@given(requests())
def test_only_named_permits_allow(doc: dict[str, Any]) -> None:
    d = ENGINE.decide(parse_request(doc, REGISTER), REGISTER)
    permits = {r.id: r for r in ENGINE.rules if r.effect == "permit"}
    for cat, cd in d.categories.items():
        if cd.outcome == "review":
            assert cd.rules and all(r in permits and permits[r].legal_basis for r in cd.rules)
            assert cat not in NEVER
        else:
            assert cd.rules
    assert d.outcome == ("review" if d.permitted else "refused")
