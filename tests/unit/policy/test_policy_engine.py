"""Engine start-up checks (schema, pledge integrity), fail-closed behaviour and bulk requests."""

from __future__ import annotations

import hashlib

import pytest
from policy_helpers import request, subject

import carewall.policy as api
from carewall.errors import PolicyError
from carewall.policy import PLEDGE_RULE_IDS, Engine, Register, parse_request

PERMIT = (
    '@id("local/x") @legal_basis("consent")\n'
    'permit (principal, action == Action::"disclose", resource) when {{ {cond} }};\n'
)


def test_public_surface_is_pinned() -> None:
    for name in (
        "Engine",
        "Register",
        "Organisation",
        "Reviewer",
        "DisclosureRequest",
        "Subject",
        "Decision",
        "CategoryDecision",
        "load_register",
        "parse_register",
        "parse_request",
        "pledge_violations",
        "DEFAULT_REGISTER_PATH",
    ):
        assert name in api.__all__, name


def test_default_engine_has_every_pledge_rule(engine: Engine) -> None:
    assert engine.rule_ids[: len(PLEDGE_RULE_IDS)] == list(PLEDGE_RULE_IDS)
    assert all(r.legal_basis for r in engine.rules if r.effect == "permit")
    assert all(r.rationale for r in engine.rules)
    expected = hashlib.sha256(Engine.pledge_text().encode()).hexdigest()
    assert engine.pledge_hash == f"sha256:{expected}"
    assert engine.policy_hash.startswith("sha256:") and len(engine.policy_hash) == 71
    assert engine.local_text == Engine.default_text()


def test_policy_hash_depends_on_local_policy(engine: Engine) -> None:
    other = Engine.load(PERMIT.format(cond="false"))
    assert other.policy_hash != engine.policy_hash
    assert Engine.load(Engine.default_text()).policy_hash == engine.policy_hash


@pytest.mark.parametrize(
    ("local", "message"),
    [
        pytest.param(
            PERMIT.format(cond='context.purpose == Purpose::"immigraton_control"'),
            "immigraton_control",
            id="typo-in-enum-id",
        ),
        pytest.param(PERMIT.format(cond="context.no_such_attr"), "local/x", id="unknown-attr"),
        pytest.param("permit (principal, action, resource);", "no @id", id="no-id"),
        pytest.param(
            '@id("a") permit (principal, action, resource);',
            "legal_basis",
            id="permit-without-basis",
        ),
        pytest.param(
            '@id("a") @legal_basis("magic") permit (principal, action, resource);',
            "magic",
            id="permit-with-unknown-basis",
        ),
        pytest.param(
            '@id("pledge/never-nationality") forbid (principal, action, resource);',
            "redefines",
            id="redefines-pledge-rule",
        ),
        pytest.param(
            '@id("pledge/extra") forbid (principal, action, resource);',
            "pledge/extra",
            id="adds-pledge-prefix",
        ),
        pytest.param(
            '@id("a") forbid (principal, action, resource);\n'
            '@id("a") forbid (principal, action, resource);',
            "twice",
            id="dup-id",
        ),
        pytest.param(
            '@id("default-deny") forbid (principal, action, resource);',
            "reserved",
            id="reserved-id",
        ),
        pytest.param("permit (principal, action, resource) when {", "not valid Cedar", id="syntax"),
        pytest.param(
            '@id("t") @legal_basis("consent") permit (principal == ?principal, action, resource);',
            "template",
            id="template",
        ),
    ],
)
def test_invalid_local_policy_is_refused(local: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        Engine.load(local)
    assert message in info.value.human()


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda t: t.replace('"immigration_control"', '"research"'), id="altered"),
        pytest.param(lambda t: t[: t.index('@id("pledge/entitlement-no-contact")')], id="dropped"),
        pytest.param(lambda t: t.replace("\nforbid (", "\npermit (", 1), id="forbid-to-permit"),
    ],
)
def test_altered_pledge_is_refused(edit: object) -> None:
    assert callable(edit)
    with pytest.raises(PolicyError):
        Engine.load(pledge=edit(Engine.pledge_text()))


def test_pledge_layout_may_change() -> None:
    text = "// reformatted\n" + Engine.pledge_text().replace("\n", "\n\n")
    assert Engine.load(pledge=text).rule_ids[:9] == list(PLEDGE_RULE_IDS)


def test_empty_local_policy_denies_everything(register: Register) -> None:
    engine = Engine.load("")
    d = engine.decide(parse_request(request(), register), register)
    assert d.outcome == "refused"
    assert d.rules == ["default-deny"]


def test_local_permit_cannot_override_pledge(register: Register) -> None:
    engine = Engine.load(PERMIT.format(cond="true"))
    req = request(
        requester="home-office-ie",
        purpose="immigration_enforcement",
        categories=["address", "name"],
    )
    d = engine.decide(parse_request(req, register), register)
    assert d.outcome == "refused"
    assert d.categories["address"].rules == (
        "pledge/no-immigration-recipient",
        "pledge/no-immigration-purpose",
    )


def test_evaluation_error_fails_closed(register: Register) -> None:
    # A forbid that errors is skipped by Cedar: without fail-closed this would be an allow.
    local = (
        PERMIT.format(cond="true")
        + '@id("local/erroring") forbid (principal, action, resource)'
        + " when { context.subjects + 9223372036854775807 > 0 };\n"
    )
    d = Engine.load(local).decide(parse_request(request(), register), register)
    assert d.outcome == "refused"
    assert d.categories["name"].rules == ("evaluation-error",)
    assert d.errors and "errors" in d.to_json()


def test_unregistered_organisation_in_decide(engine: Engine, register: Register) -> None:
    req = parse_request(request(), register)
    from carewall.policy import parse_register

    small = parse_register('[[organisation]]\nid = "met-police"\nname = "M"\nfunction = "police"\n')
    from carewall.errors import InputError

    with pytest.raises(InputError) as info:
        engine.decide(req, small)
    assert info.value.field == "holder"


def test_requester_function_comes_from_register(engine: Engine) -> None:
    # The same request id, registered with a different function, is decided differently.
    text = (
        '[[organisation]]\nid = "met-police"\nname = "M"\nfunction = "immigration_enforcement"\n'
        '[[organisation]]\nid = "islington-council"\nname = "I"\nfunction = "local_authority"\n'
    )
    reg = api.parse_register(text)
    d = engine.decide(parse_request(request(), reg), reg)
    assert "pledge/no-immigration-recipient" in d.rules


def test_bulk_groups_by_subject_attributes(engine: Engine, register: Register) -> None:
    subjects = [subject(f"s{i}", victim=(i % 3 == 0), child=(i % 2 == 0)) for i in range(12)]
    d = engine.decide(parse_request(request(subjects=subjects), register), register)
    doc = d.to_json()
    assert len(doc["groups"]) == 4
    assert sorted(i for g in doc["groups"] for i in g["subjects"]) == list(range(12))
    for g in doc["groups"]:
        victims = {subjects[i]["is_victim_or_witness"] for i in g["subjects"]}
        assert len(victims) == 1
        want = "refused" if victims.pop() else "review"
        assert g["categories"]["address"]["outcome"] == want
    # Some group may receive the address, so the top level is review, rules = union.
    assert doc["categories"]["address"] == {
        "outcome": "review",
        "rules": ["local/police-crime-suspect"],
    }


def test_bulk_all_same_has_no_groups(engine: Engine, register: Register) -> None:
    subjects = [subject(f"s{i}") for i in range(1000)]
    d = engine.decide(parse_request(request(subjects=subjects), register), register)
    assert "groups" not in d.to_json()
    assert d.groups[0]["subjects"] == list(range(1000))


def test_refused_categories_union_rules_across_groups(engine: Engine, register: Register) -> None:
    subjects = [subject("a"), subject("b", victim=True)]
    req = request(subjects=subjects, holder="whittington-health", categories=["health_record"])
    d = engine.decide(parse_request(req, register), register)
    assert d.categories["health_record"].rules == (
        "pledge/no-victim-witness-referral",
        "pledge/court-order-health",
    )
