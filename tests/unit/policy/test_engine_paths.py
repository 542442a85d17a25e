"""The engine's quick paths give what the plain definitions give.

- ``Engine.context_json`` writes each Cedar context from precomputed pieces; it must be
  ``json.dumps(Engine.context(...))`` character for character, for any facts (ids outside
  the vocabulary, quotes, non-ASCII and lone surrogates included), so Cedar reads the same
  request either way.
- A decision's per-category answer is the contract's merge of its groups' answers: review
  when some group may receive the category, with the rules of the groups that may (else of
  all groups), in the policy's rule order. One group takes a shortcut; the merge is
  recomputed here from ``groups`` for one and for several groups alike.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from carewall.policy import DEFAULT_REGISTER_PATH, Engine, load_register, parse_request
from carewall.policy.facts import RequestFacts, SubjectFacts, facts_of
from carewall.vocab import vocabulary

ENGINE = Engine.load()
REGISTER = load_register(DEFAULT_REGISTER_PATH)
VOCAB = vocabulary()
ORGS = sorted(REGISTER.organisations)
SETTINGS = settings(max_examples=300, deadline=None)

TEXT = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from('"\\\n\t\x00\ud800')),
    max_size=12,
)


def _ids(kind: str) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(VOCAB[kind]), TEXT)


FACTS = st.builds(
    RequestFacts,
    requester=st.sampled_from(ORGS),
    holder=st.one_of(st.sampled_from(ORGS), TEXT),
    purpose=_ids("purpose"),
    legal_basis=_ids("legal_basis"),
    other_bases=st.lists(_ids("legal_basis"), max_size=3).map(tuple),
    offence=st.one_of(
        st.none(),
        st.sampled_from(["theft_act_1968_s1", "immigration_act_1971_s24_1_b", "unlisted"]),
        TEXT,
    ),
    court_order=st.booleans(),
    onward_recipients=st.lists(_ids("function"), max_size=3).map(tuple),
    categories=st.just(("name",)),
)
SUBJECTS = st.builds(SubjectFacts, st.booleans(), st.booleans(), st.booleans())


@SETTINGS
@given(FACTS, SUBJECTS, st.integers(min_value=0, max_value=2**63 - 1))
def test_context_json_is_json_dumps_of_the_context(
    facts: RequestFacts, subject: SubjectFacts, count: int
) -> None:
    want = json.dumps(ENGINE.context(facts, subject, count))
    assert ENGINE.context_json(facts, subject, count) == want


def test_the_requests_cedar_sees_carry_that_context() -> None:
    doc = _request(
        {"subjects": [_subject(False, False), _subject(True, False)], "categories": ["name"]}
    )
    facts, subjects = facts_of(parse_request(doc, REGISTER))
    keys, _, batch = ENGINE.cedar_requests(facts, subjects, REGISTER)
    assert [r["context"] for r in batch] == [
        json.dumps(ENGINE.context(facts, k, len(subjects))) for k in keys
    ]


_REFS = itertools.count()


def _subject(child: bool, victim: bool, consent: bool | None = None) -> dict[str, Any]:
    ref = f"s{next(_REFS)}"  # each subject its own person: a request lists a person once
    out: dict[str, Any] = {"ref": ref, "is_child": child, "is_victim_or_witness": victim}
    if consent is not None:
        out["consent"] = consent
    return out


def _request(fields: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {
        "reference": "R-1",
        "requester": "met-police",
        "holder": "whittington-health",
        "purpose": "prevention_detection_of_crime",
        "legal_basis": "dpa2018_sch2_p1_para2_crime",
        "offence": "theft_act_1968_s1",
    }
    return base | fields


REQUESTS = st.fixed_dictionaries(
    {
        "requester": st.sampled_from(ORGS),
        "holder": st.sampled_from(ORGS),
        "purpose": st.sampled_from(VOCAB["purpose"]),
        "legal_basis": st.sampled_from(
            [b for b in VOCAB["legal_basis"] if b not in ("court_order",)]
        ),
        "subjects": st.lists(
            st.builds(_subject, st.booleans(), st.booleans(), st.none() | st.booleans()),
            min_size=1,
            max_size=5,
        ),
        "categories": st.lists(
            st.sampled_from(VOCAB["category"]), min_size=1, max_size=6, unique=True
        ),
    }
).map(_request)


@SETTINGS
@given(REQUESTS)
def test_each_category_is_the_merge_of_its_groups(doc: dict[str, Any]) -> None:
    decision = ENGINE.decide(parse_request(doc, REGISTER), REGISTER)
    order = {rule: i for i, rule in enumerate(ENGINE.rule_ids)}
    for cat, got in decision.categories.items():
        parts = [g["categories"][cat] for g in decision.groups]
        allowed = [p for p in parts if p["outcome"] == "review"]
        rules = {r for p in (allowed or parts) for r in p["rules"]}
        assert got.outcome == ("review" if allowed else "refused")
        assert got.rules == tuple(sorted(rules, key=lambda r: (order.get(r, len(order)), r)))
    every = {r for d in decision.categories.values() for r in d.rules}
    assert set(decision.rules) == every
