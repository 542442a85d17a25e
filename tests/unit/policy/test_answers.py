"""The engine reads Cedar's answers under cedarpy's wrapper: the same answers, field by field.

:mod:`carewall.policy.answers` decodes what the evaluator writes instead of going through
``cedarpy.is_authorized_batch``'s dicts and objects. These tests hold the two readings equal
(decision, determining policies, errors) on random requests under the default policy and
under a policy whose forbid errors at run time, and hold that anything else in the answer's
place is refused, never read as an allow.
"""

from __future__ import annotations

from typing import Any

import cedarpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carewall.policy import DEFAULT_REGISTER_PATH, Engine, load_register, parse_request
from carewall.policy import engine as engine_module
from carewall.policy.facts import facts_of
from carewall.vocab import vocabulary

REGISTER = load_register(DEFAULT_REGISTER_PATH)
VOCAB = vocabulary()
ORGS = sorted(REGISTER.organisations)
# A forbid Cedar skips with an error for two or more subjects (integer overflow).
ERRING = (
    '@id("local/erring") forbid (principal, action, resource)'
    " when { context.subjects * 9223372036854775807 > 0 };\n"
)
ENGINES = {"default": Engine.load(), "erring": Engine.load(Engine.default_text() + ERRING)}

DOC: dict[str, Any] = {
    "reference": "R-1",
    "requester": "met-police",
    "holder": "whittington-health",
    "purpose": "prevention_detection_of_crime",
    "legal_basis": "dpa2018_sch2_p1_para2_crime",
    "offence": "theft_act_1968_s1",
    "subjects": [{"ref": "s", "is_child": False, "is_victim_or_witness": False}],
    "categories": ["name", "address"],
}
REQUESTS = st.fixed_dictionaries(
    {
        "reference": st.just("R-1"),
        "requester": st.sampled_from(ORGS),
        "holder": st.sampled_from(ORGS),
        "purpose": st.sampled_from(VOCAB["purpose"]),
        "legal_basis": st.sampled_from([b for b in VOCAB["legal_basis"] if b != "court_order"]),
        "offence": st.sampled_from(["theft_act_1968_s1", "immigration_act_1971_s24_1_b"]),
        "subjects": st.lists(
            st.fixed_dictionaries(
                {
                    "ref": st.just("s"),
                    "is_child": st.booleans(),
                    "is_victim_or_witness": st.booleans(),
                }
            ),
            min_size=1,
            max_size=3,
        ),
        "categories": st.lists(
            st.sampled_from(VOCAB["category"]), min_size=1, max_size=5, unique=True
        ),
    }
)


def _public(engine: Engine, batch: list[dict[str, Any]]) -> list[tuple[str, list[str], list[Any]]]:
    out = cedarpy.is_authorized_batch(batch, engine._policies, engine._entities_for(REGISTER))
    return [
        (r.decision.value, sorted(r.diagnostics.reasons), _sorted(r.diagnostics.errors))
        for r in out
    ]


def _sorted(errors: list[Any]) -> list[str]:
    """Cedar lists reasons and errors from a set: in no fixed order from call to call."""
    return sorted(repr(e) for e in errors)


@settings(max_examples=300, deadline=None)
@given(REQUESTS, st.sampled_from(sorted(ENGINES)))
def test_the_engine_reads_what_the_public_wrapper_reads(doc: dict[str, Any], which: str) -> None:
    engine = ENGINES[which]
    facts, subjects = facts_of(parse_request(doc, REGISTER))
    _, _, batch = engine.cedar_requests(facts, subjects, REGISTER)
    errors: list[str] = []
    ours = engine._evaluate(batch, REGISTER, errors)
    assert errors == []
    read = [
        (a.decision, sorted(a.diagnostics.reasons), _sorted(a.diagnostics.errors))
        for a in ours
        if a is not None
    ]
    assert read == _public(engine, batch)


def test_an_erring_forbid_is_read_with_its_errors() -> None:
    engine = ENGINES["erring"]
    doc = DOC | {"subjects": [DOC["subjects"][0]] * 2, "categories": ["name"]}
    facts, subjects = facts_of(parse_request(doc, REGISTER))
    _, _, batch = engine.cedar_requests(facts, subjects, REGISTER, count=2)
    ours = engine._evaluate(batch, REGISTER, [])
    assert ours[0] is not None and ours[0].diagnostics.errors
    assert engine._judge(ours[0], []).rules == ("evaluation-error",)


@pytest.mark.parametrize(
    "answer",
    [
        b'{"decision":"Allow","correlation_id":null,"diagnostics":{"errors":[]}}',
        b'{"decision":"Allow","diagnostics":{"reason":["policy9"]}}',
        b'{"decision":"Permit","diagnostics":{"reason":["policy9"],"errors":[]}}',
        b'{"decision":"Allow"}',
        b"not json",
    ],
    ids=["no-reasons-field", "no-errors-field", "unknown-decision", "no-diagnostics", "garbage"],
)
def test_an_answer_of_any_other_shape_refuses(
    answer: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine.load()
    monkeypatch.setattr(engine_module, "_authorize", lambda batch, *_: [answer] * len(batch))
    decision = Engine.decide_uncached(engine, *facts_of(parse_request(DOC, REGISTER)), REGISTER)
    assert decision.outcome == "refused"
    assert {c.rules for c in decision.categories.values()} == {("evaluation-error",)}
