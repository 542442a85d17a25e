"""The exact shape of an entry (contract §6): named invalid inputs, each refused by name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from carewall.audit.shape import ShapeError, check_shape
from carewall.ledger.canonical import canonical

RELEASE: dict[str, Any] = {
    "v": 1,
    "kind": "release",
    "time": "2026-11-21T10:00:00Z",
    "request": "r0123456789abcdef0123",
    "holder": "st-marys-primary",
    "holder_function": "education",
    "requester": "islington-council",
    "requester_function": "local_authority",
    "purpose": "safeguarding_child",
    "legal_basis": "children_act_1989_s47",
    "other_bases": [],
    "offence": None,
    "court_order": False,
    "onward_recipients": [],
    "categories": ["address", "name"],
    "subjects": 1,
    "victims_or_witnesses": 0,
    "is_child": True,
    "is_victim_or_witness": False,
    "consent": False,
    "recipient": "islington-council",
    "recipient_function": "local_authority",
    "reviewer": "dpo-st-marys",
    "policy": "sha256:" + "0" * 64,
    "file": None,
}
DEFERRAL: dict[str, Any] = {
    "v": 1,
    "kind": "deferral",
    "time": "2026-11-21T10:00:00Z",
    "request": "r0123456789abcdef0123",
    "action": "deferred",
    "reviewer": "dpo-st-marys",
    "subjects": 1,
    "review_date": "2026-12-01",
}


def test_a_valid_entry_passes() -> None:
    assert check_shape(canonical(RELEASE)) == RELEASE
    assert check_shape(canonical(DEFERRAL)) == DEFERRAL


def refused(data: bytes) -> ShapeError:
    with pytest.raises(ShapeError) as e:
        check_shape(data)
    return e.value


def with_(**changes: Any) -> bytes:
    return canonical({**RELEASE, **changes})


def without(*fields: str) -> bytes:
    return canonical({k: v for k, v in RELEASE.items() if k not in fields})


CASES: list[tuple[str, bytes, str]] = [
    ("not JSON", b"{release", "is not a JSON object"),
    ("not UTF-8", b'{"v":1,"kind":"\xff"}', "valid UTF-8"),
    ("a list", b"[1]", "is not a JSON object"),
    ("keys out of order", b'{"v":1,"kind":"notice"}', "RFC 8785 canonical form"),
    ("spaces", json.dumps(RELEASE, sort_keys=True).encode(), "RFC 8785 canonical form"),
    ("a key twice", b'{"kind":"notice","kind":"release"}', "appears twice"),
    ("a float", with_(subjects=1.5), "not an integer"),
    (
        "a whole float",
        with_(subjects=1).replace(b'"subjects":1', b'"subjects":1.0'),
        "not an integer",
    ),
    ("an integer beyond 2**53", with_(subjects=7).replace(b":7,", b":18014398509481984,"), "range"),
    ("no kind", canonical({"v": 1}), "has no kind"),
    ("an unknown kind", with_(kind="witness"), "a kind this reader does not know"),
    ("a kind in capitals", with_(kind="Release"), "a kind this reader does not know"),
    ("v 2", with_(v=2), "field 'v' is not one of its allowed values"),
    ("a missing field", without("consent"), "lacks the field 'consent'"),
    ("an unknown field", with_(officer="DC J. Smith"), "has an unknown field 'officer'"),
    ("an unknown field with a name for a key", with_(**{"J. Smith": 1}), "not an identifier"),
    ("a function in capitals", with_(requester_function="Police"), "not one of its allowed"),
    ("a trailing newline", with_(reviewer="dpo-st-marys\n"), "not a valid reviewer id"),
    ("a trailing space", with_(holder="st-marys-primary "), "not a valid organisation id"),
    ("a look-alike letter", with_(holder="st-mаrys-primary"), "not a valid organisation id"),
    ("a request id in capitals", with_(request="R0123456789ABCDEF0123"), "not a valid request id"),
    ("a boolean as a string", with_(court_order="false"), "wrong type (expected boolean)"),
    ("a count as a boolean", with_(subjects=True), "wrong type (expected integer)"),
    ("no subjects", with_(subjects=0), "'minimum' rule"),
    ("a category twice", with_(categories=["name", "name"]), "lists an item twice"),
    ("no category", with_(categories=[]), "'minItems' rule"),
    ("a free-text offence", with_(offence="stole a bike"), "none of the forms"),
    ("a time without zone", with_(time="2026-11-21T10:00:00"), "not a valid"),
    ("a time that never was", with_(time="2026-02-30T10:00:00Z"), "not a real date and time"),
    (
        "a review date that never was",
        canonical({**DEFERRAL, "review_date": "2026-02-30"}),
        "'review_date' is not a real date",
    ),
]


@pytest.mark.parametrize(("data", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_malformed_entry_is_refused_by_name(data: bytes, words: str) -> None:
    err = refused(data)
    assert words in err.message
    assert "Smith" not in err.message and "bike" not in err.message  # never the value


def test_every_error_is_listed_up_to_three() -> None:
    err = refused(without("purpose", "legal_basis", "offence", "consent"))
    assert err.kind == "release"
    assert err.message.count("lacks the field") == 3
    assert "(and 1 more)" in err.message
