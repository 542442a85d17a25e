"""A table of named malformed inputs, each with the field and message it must produce.

Errors name the field, the bad vocabulary id and what is allowed, and never echo personal
values (subject refs, names, free text).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from policy_helpers import request, subject

from carewall.errors import InputError
from carewall.policy import MAX_REQUEST_BYTES, Register, parse_register, parse_request

SECRET = "SECRET-REF-9434765919"


def _without(key: str) -> dict[str, Any]:
    r = request()
    del r[key]
    return r


CASES: list[tuple[str, Any, str, str]] = [
    ("missing-purpose", _without("purpose"), "purpose", "is required"),
    ("missing-subjects", _without("subjects"), "subjects", "is required"),
    ("missing-reference", _without("reference"), "reference", "is required"),
    (
        "typo-purpose",
        request(purpose="immigraton_control"),
        "purpose",
        "unknown purpose 'immigraton_control'",
    ),
    ("typo-basis", request(legal_basis="consnet"), "legal_basis", "unknown legal_basis"),
    ("typo-other-basis", request(other_bases=["consent", "x"]), "other_bases[1]", "unknown"),
    (
        "typo-category",
        request(categories=["adress"]),
        "categories[0]",
        "unknown category 'adress'",
    ),
    (
        "typo-onward",
        request(onward_recipients=["home_office"]),
        "onward_recipients[0]",
        "unknown function",
    ),
    ("unknown-requester", request(requester="mi5"), "requester", "not in the organisations"),
    ("unknown-holder", request(holder="nowhere"), "holder", "not in the organisations"),
    ("empty-subjects", request(subjects=[]), "subjects", "must not be empty"),
    ("empty-categories", request(categories=[]), "categories", "must not be empty"),
    ("duplicate-category", request(categories=["name", "name"]), "categories[1]", "twice"),
    ("subjects-not-list", request(subjects="x"), "subjects", "wrong type"),
    ("purpose-not-string", request(purpose=3), "purpose", "wrong type"),
    ("prejudice-as-string", request(prejudice="true"), "prejudice", "wrong type"),
    (
        "child-flag-as-int",
        request(subjects=[{"ref": SECRET, "is_child": 1, "is_victim_or_witness": False}]),
        "subjects[0].is_child",
        "wrong type",
    ),
    (
        "victim-flag-missing",
        request(subjects=[{"ref": SECRET, "is_child": False}]),
        "subjects[0].is_victim_or_witness",
        "is required",
    ),
    ("subject-ref-empty", request(subjects=[subject(ref="")]), "subjects[0].ref", "empty"),
    (
        "subject-ref-not-string",
        request(subjects=[{"ref": 12, "is_child": False, "is_victim_or_witness": False}]),
        "subjects[0].ref",
        "wrong type",
    ),
    ("unknown-field", request(purpse="research"), "purpse", "not a known field"),
    (
        "unknown-subject-field",
        request(subjects=[dict(subject(SECRET), nationality="x")]),
        "subjects[0].nationality",
        "not a known field",
    ),
    (
        "offence-free-text",
        request(offence=f"overstaying by {SECRET}"),
        "offence",
        "not an offence id",
    ),
    (
        "court-order-bad-date",
        request(court_order={"reference": "T1", "court": "C", "date": "02/11/2026"}),
        "court_order.date",
        "not a real date",
    ),
    (
        "court-basis-without-order",
        request(legal_basis="court_order"),
        "court_order",
        "no court order",
    ),
    (
        "received-at-no-zone",
        request(received_at="2026-11-21T10:00:00"),
        "received_at",
        "no time zone",
    ),
    ("received-at-garbage", request(received_at=SECRET), "received_at", "not a date"),
    ("not-an-object", [request()], "request", "must be a JSON object"),
    ("reference-too-long", request(reference="R" * 201), "reference", "too long"),
]

RAW_CASES: list[tuple[str, bytes, str, str]] = [
    ("not-utf8", b'{"reference": "\xff\xfe"}', "request", "not valid UTF-8"),
    ("not-json", b'{"reference": ', "request", "not valid JSON"),
    ("empty", b"   ", "request", "empty"),
    ("duplicate-key", b'{"purpose": "research", "purpose": "direct_care"}', "request", "twice"),
    ("json-array", b"[]", "request", "must be a JSON object"),
    ("oversized", b" " * (MAX_REQUEST_BYTES + 1), "request", "too large"),
    ("huge-integer", b'{"subjects": ' + b"9" * 5000 + b"}", "request", "too long"),
]


@pytest.mark.parametrize(
    ("data", "field", "message"), [pytest.param(d, f, m, id=n) for n, d, f, m in CASES]
)
def test_malformed_request(register: Register, data: Any, field: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_request(data, register)
    err = info.value
    assert err.field == field
    assert message in err.message
    assert err.fix
    assert SECRET not in err.human()
    # The same error through the JSON text path.
    with pytest.raises(InputError) as again:
        parse_request(json.dumps(data), register)
    assert again.value.field == field


@pytest.mark.parametrize(
    ("data", "field", "message"), [pytest.param(d, f, m, id=n) for n, d, f, m in RAW_CASES]
)
def test_malformed_bytes(register: Register, data: bytes, field: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_request(data, register)
    assert info.value.field == field
    assert message in info.value.message


def test_vocabulary_error_lists_allowed_ids(register: Register) -> None:
    with pytest.raises(InputError) as info:
        parse_request(request(purpose="immigraton_control"), register)
    assert info.value.fix is not None and "immigration_control" in info.value.fix


def test_valid_request_round_trips(register: Register) -> None:
    full = request(
        officer={"name": "DC J. Smith", "role": "DC", "contact": "j@x.example"},
        authorised_by={"name": "Insp. R. Khan", "role": "Inspector"},
        offence="theft_act_1968_s1",
        court_order={"reference": "T1", "court": "Snaresbrook", "date": "2026-11-02"},
        necessity="Because.",
        prejudice=True,
        received_at="2026-11-21T10:00:00Z",
    )
    req = parse_request(json.dumps(full).encode(), register)
    assert req.court_order is not None and req.court_order.date.isoformat() == "2026-11-02"
    assert req.received_at is not None and req.received_at.utcoffset() is not None
    assert req.subjects[0].ref == "9434765919" and not req.has_consent


REGISTER_CASES: list[tuple[str, str, str, str]] = [
    ("bad-toml", "[[organisation]\n", "register", "not valid TOML"),
    ("no-orgs", "", "organisation", "no organisations"),
    ("unknown-top-key", '[[organisations]]\nid="a"\n', "register.organisations", "unknown key"),
    (
        "bad-id",
        '[[organisation]]\nid = "St Marys"\nname = "S"\nfunction = "education"\n',
        "organisation[0].id",
        "invalid id",
    ),
    (
        "unknown-function",
        '[[organisation]]\nid = "a"\nname = "A"\nfunction = "spies"\n',
        "organisation[0].function",
        "unknown function 'spies'",
    ),
    (
        "missing-name",
        '[[organisation]]\nid = "a"\nfunction = "police"\n',
        "organisation[0].name",
        "missing",
    ),
    (
        "duplicate-id",
        '[[organisation]]\nid = "a"\nname = "A"\nfunction = "police"\n'
        '[[organisation]]\nid = "a"\nname = "B"\nfunction = "police"\n',
        "organisation[1].id",
        "duplicate",
    ),
    (
        "reviewer-unknown-org",
        '[[organisation]]\nid = "a"\nname = "A"\nfunction = "police"\n'
        '[[reviewer]]\nid = "r"\nname = "R"\norganisation = "b"\nroles = ["release_reviewer"]\n',
        "reviewer[0].organisation",
        "not in the register",
    ),
    (
        "reviewer-bad-role",
        '[[organisation]]\nid = "a"\nname = "A"\nfunction = "police"\n'
        '[[reviewer]]\nid = "r"\nname = "R"\norganisation = "a"\nroles = ["boss"]\n',
        "reviewer[0].roles",
        "unknown role 'boss'",
    ),
    (
        "reviewer-no-roles",
        '[[organisation]]\nid = "a"\nname = "A"\nfunction = "police"\n'
        '[[reviewer]]\nid = "r"\nname = "R"\norganisation = "a"\nroles = []\n',
        "reviewer[0].roles",
        "non-empty",
    ),
]


@pytest.mark.parametrize(
    ("text", "field", "message"), [pytest.param(t, f, m, id=n) for n, t, f, m in REGISTER_CASES]
)
def test_malformed_register(text: str, field: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_register(text)
    assert info.value.field == field
    assert message in info.value.message


def test_default_register(register: Register) -> None:
    functions = {o.function for o in register.organisations.values()}
    assert {
        "immigration_enforcement",
        "police",
        "health",
        "education",
        "welfare",
        "tax",
        "local_authority",
        "court",
        "charity",
        "fraud_prevention",
    } <= functions
    roles = set().union(*(r.roles for r in register.reviewers.values()))
    assert roles == {"release_reviewer", "appeal_reviewer"}
    assert register.reviewers["dpo-st-marys"].organisation == "st-marys-primary"
