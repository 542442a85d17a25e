"""The plan: each combination decided once; only mapped, requested, permitted columns go."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from egress_helpers import MAPPING, PERMIT, VICTIM, decide, refuse_all

from carewall.egress.mapping import load_mapping
from carewall.egress.plan import GROUPS, NEVER_RULE, build_plan, group_code
from carewall.errors import InputError
from carewall.policy.decision import NO_DECISION, CategoryDecision
from carewall.policy.facts import SubjectFacts

CATS = ["name", "address", "attendance", "nationality"]
SOURCE = ("ref", "forename", "postcode", "attendance", "nationality", "sen", "under_18",
          "victim", "consent", "notes")  # fmt: skip


def test_group_codes_follow_subject_facts_order() -> None:
    assert [group_code(g) for g in GROUPS] == list(range(8))
    assert sorted(GROUPS) == list(GROUPS)


def test_each_combination_decided_once() -> None:
    seen: list[SubjectFacts] = []

    def counting(f: SubjectFacts) -> Mapping[str, CategoryDecision]:
        seen.append(f)
        return decide(f)

    build_plan(load_mapping(MAPPING), CATS, counting)
    assert sorted(seen) == list(GROUPS)


def test_columns_per_group() -> None:
    plan = build_plan(load_mapping(MAPPING), CATS, decide, source_columns=SOURCE)
    adult = plan.groups[group_code(SubjectFacts(False, False, False))]
    child = plan.groups[group_code(SubjectFacts(True, False, False))]
    victim = plan.groups[group_code(SubjectFacts(True, True, False))]
    assert adult.columns == ("forename", "postcode")
    assert child.columns == ("forename", "postcode", "attendance")
    assert victim.columns == () and not victim.receives
    assert plan.output_columns == ("forename", "postcode", "attendance")
    assert plan.receiving == (0, 1, 3, 4, 5, 7)
    assert plan.groups_for("attendance") == (4, 5, 7)
    v = plan.verdicts
    assert v["forename"][0].goes and v["forename"][0].rules == (PERMIT,)
    assert v["forename"][6].reason == "refused" and v["forename"][6].rules == (VICTIM,)
    assert v["sen"][0].reason == "not requested"
    assert v["notes"][0].reason == "unmapped"
    assert v["under_18"][0].reason == "fact column"
    assert v["ref"][0].reason == "subject reference"
    assert plan.to_json()["output_columns"] == ["forename", "postcode", "attendance"]


def test_never_disclosed_never_goes_whatever_decide_says() -> None:
    plan = build_plan(load_mapping(MAPPING), ["nationality"], decide)
    assert decide(GROUPS[0])["nationality"].outcome == "review"
    assert all(not v.goes and v.rules == (NEVER_RULE,) for v in plan.verdicts["nationality"])
    assert plan.empty and plan.output_columns == ()


def test_a_missing_decision_is_a_refusal() -> None:
    plan = build_plan(load_mapping(MAPPING), ["name", "address"], lambda f: {})
    assert plan.empty
    assert plan.verdicts["forename"][0].rules == (NO_DECISION,)


def test_refuse_everything_gives_an_empty_plan() -> None:
    assert build_plan(load_mapping(MAPPING), CATS, refuse_all).empty


@pytest.mark.parametrize(
    ("columns", "what"),
    [
        (tuple(c for c in SOURCE if c != "postcode"), "no column"),
        (tuple(c for c in SOURCE if c != "ref"), "no column"),
        (tuple(c for c in SOURCE if c != "victim"), "no column"),
        (("Forename", *SOURCE), "several columns"),
        (tuple("POSTCODE" if c == "postcode" else c for c in SOURCE), "no column"),
    ],
)
def test_columns_checked_against_the_source(columns: tuple[str, ...], what: str) -> None:
    with pytest.raises(InputError, match=what):
        build_plan(load_mapping(MAPPING), CATS, decide, source_columns=columns)


@pytest.mark.parametrize("cats", [[], ["names"], ["name", "Name"]])
def test_requested_categories_checked(cats: list[str]) -> None:
    with pytest.raises(InputError):
        build_plan(load_mapping(MAPPING), cats, decide)
