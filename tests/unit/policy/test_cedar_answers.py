"""The engine reads Cedar's answers itself, as cedarpy's wrapper would, and fails closed.

``Engine`` calls cedarpy's extension function without its Python wrapper and reads the
answers with one typed decoder. Two kinds of evidence that this changes nothing:

- a differential test: random requests' Cedar requests, asked through the wrapper
  (``cedarpy.is_authorized_batch``), give the same decision, reasons and errors as the
  engine reads, and the decision the engine makes is the one the wrapper's answers judge to;
- a fake extension that answers what Cedar never should (a lower-case decision, errors that
  are not strings, an Allow naming no permit, too few answers): every one is a refusal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import cedarpy
import pytest
from hypothesis import given
from test_cache import REGISTER, SETTINGS, THEFT, requests

import carewall.policy.engine as engine_module
from carewall.policy import Engine, Register, parse_request
from carewall.policy.decision import EVALUATION_ERROR, NO_DECISION, UNNAMED_PERMIT
from carewall.policy.facts import facts_of

ENGINE = Engine.load()
ENGINE.cache = None
# The same policies and entities, parsed apart from the engine, for the wrapper.
POLICIES = cedarpy.PolicySet.from_str(Engine.pledge_text() + "\n\n" + ENGINE.local_text)


def _entities(register: Register) -> cedarpy.Entities:
    ents = [
        {
            "uid": {"type": "Organisation", "id": o.id},
            "attrs": {"function": {"__entity": {"type": "Function", "id": o.function}}},
            "parents": [],
        }
        for o in register.organisations.values()
    ]
    return cedarpy.Entities.from_json_str(json.dumps(ents))


ENTITIES = _entities(REGISTER)


@SETTINGS
@given(requests())
def test_answers_read_directly_equal_the_wrappers(doc: dict[str, Any]) -> None:
    facts, subjects = facts_of(parse_request(doc, REGISTER))
    _, _, batch = ENGINE.cedar_requests(facts, subjects, REGISTER)
    wrapped = cedarpy.is_authorized_batch(batch, POLICIES, ENTITIES)
    # Cedar lists the deciding policies in no fixed order (the engine sorts them).
    want = [
        (r.decision.value, sorted(r.diagnostics.reasons), r.diagnostics.errors) for r in wrapped
    ]
    errors: list[str] = []
    read = ENGINE._evaluate(batch, REGISTER, errors)
    assert errors == []
    got = [(a.decision, sorted(a.diagnostics.reason), a.diagnostics.errors) for a in read if a]
    assert got == want


class _FakeCedar:
    """Stands in for cedarpy's extension: answers ``texts`` to any batch."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    def is_authorized_batch(self, batch: list[Any], *_: Any) -> list[str]:
        return self.texts


@pytest.fixture
def fake_cedar(monkeypatch: pytest.MonkeyPatch) -> Iterator[_FakeCedar]:
    fake = _FakeCedar([])
    monkeypatch.setattr(engine_module, "_cedar_ext", fake)
    yield fake


def _one_category() -> dict[str, Any]:
    subject = {"ref": "s", "is_child": False, "is_victim_or_witness": False}
    return dict(THEFT, subjects=[subject], categories=["address"])


def _decide(texts: list[str], fake: _FakeCedar) -> tuple[str, tuple[str, ...], list[str]]:
    fake.texts = texts
    decision = ENGINE.decide(parse_request(_one_category(), REGISTER), REGISTER)
    return decision.outcome, decision.categories["address"].rules, decision.errors


def _named_permit() -> str:
    return next(cid for cid in ENGINE._named_permits)


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        # %s: a named permit of the policy, which would allow were the answer well formed.
        ('{"decision":"allow","diagnostics":{"reason":["%s"],"errors":[]}}', (NO_DECISION,)),
        ('{"decision":"NoDecision"}', (NO_DECISION,)),
        ('{"decision":"Allow","diagnostics":{"reason":[],"errors":[]}}', (UNNAMED_PERMIT,)),
        ('{"decision":"Allow"}', (UNNAMED_PERMIT,)),
        ('{"decision":"Allow","diagnostics":{"reason":["policy9999"]}}', (UNNAMED_PERMIT,)),
        ('{"decision":"Allow","diagnostics":{"reason":["%s"],"errors":["x"]}}',
         (EVALUATION_ERROR,)),
        ('{"decision":"Allow","diagnostics":{"reason":["%s"],"errors":[{"e":1}]}}',
         (EVALUATION_ERROR,)),
        ('{"diagnostics":{"reason":["%s"]}}', (EVALUATION_ERROR,)),
        ('{"decision":true}', (EVALUATION_ERROR,)),
        ("not json", (EVALUATION_ERROR,)),
    ],
)  # fmt: skip
def test_an_answer_cedar_never_gives_is_a_refusal(
    fake_cedar: _FakeCedar, text: str, rules: tuple[str, ...]
) -> None:
    answer = text.replace("%s", _named_permit())
    outcome, got, _ = _decide([answer], fake_cedar)
    assert (outcome, got) == ("refused", rules)


def test_too_few_or_too_many_answers_refuse_every_category(fake_cedar: _FakeCedar) -> None:
    allow = '{"decision":"Allow","diagnostics":{"reason":["%s"]}}'.replace("%s", _named_permit())
    for texts in ([], [allow, allow]):
        outcome, rules, errors = _decide(texts, fake_cedar)
        assert (outcome, rules) == ("refused", (EVALUATION_ERROR,))
        assert any("different number of answers" in e for e in errors)
    # The fake is heard: the same answer, once, is the permit it names.
    assert _decide([allow], fake_cedar)[0] == "review"
