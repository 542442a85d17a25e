"""The pydantic-free reader (``parse_document``) equals the models (``parse_request``).

``carewall decide`` reads requests with :func:`carewall.policy.parse_document`, the service
with :func:`carewall.policy.request.parse_request`. A differential test: valid documents
(the examples and a builder) are mutated at random (a key dropped, an unknown key added,
a value anywhere replaced by a value of the wrong type, at a length bound, with a control
character or a lone surrogate, a near-miss id or date, and so on) and given to both as the
same JSON bytes. Both must accept, with the same content (the model's ``model_dump()``) and
the same facts, or both refuse with the same error: field, message and fix.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from policy_helpers import request, subject
from test_policy_malformed import CASES, RAW_CASES

from carewall.errors import InputError
from carewall.policy import Register, document, parse_document, parse_request
from carewall.policy.document import stored_document
from carewall.policy.facts import facts_of, facts_of_document
from carewall.vocab import vocabulary

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = [json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))]
TODAY = dt.date(2026, 12, 1)
VOCAB = vocabulary()
SETTINGS = settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))

FULL = request(
    officer={"name": "DC J. Smith", "role": "DC", "contact": "j@x.example"},
    authorised_by={"name": "Insp. R. Khan", "role": "Inspector"},
    other_bases=["consent"],
    court_order={"reference": "T1", "court": "Snaresbrook", "date": "2026-11-02"},
    subjects=[subject(), dict(subject("2", child=True), consent=False)],
    onward_recipients=["health"],
    necessity="Because.",
    prejudice=True,
    received_at="2026-11-21T10:00:00Z",
)
STARTS = [*EXAMPLES, request(), FULL]

KEYS = [
    "reference",
    "requester",
    "officer",
    "authorised_by",
    "holder",
    "purpose",
    "legal_basis",
    "other_bases",
    "offence",
    "court_order",
    "subjects",
    "categories",
    "onward_recipients",
    "necessity",
    "prejudice",
    "received_at",
    "name",
    "role",
    "contact",
    "court",
    "date",
    "ref",
    "is_child",
    "is_victim_or_witness",
    "consent",
]


def _text(n: int, char: str = "a") -> str:
    return char * n


STRINGS = st.sampled_from(
    [
        "",
        " ",
        "   ",
        "x",
        "\t",
        "a\tb",
        "a\nb",
        "a\x00b",
        "a\x7fb",
        "a\x85b",
        "\ud800",
        "a\udc00",
        "😀",
        "é",
        "ａ",
        "immigraton_control",
        "consent",
        "court_order",
        "dpa2018_sch2_p1_para2_crime",
        "theft_act_1968_s1",
        "immigration_act_1971_s24_1_b",
        "theft_act_1968_s1\n",
        "Theft Act",
        "met-police",
        "home-office-ie",
        "islington-council",
        "nowhere",
        "2026-11-02",
        "2099-01-01",
        "2026-02-30",
        "02/11/2026",
        "2026-1-02",
        "２０２６-11-02",
        "2026-11-21T10:00:00Z",
        "2026-11-21T10:00:00",
        "2026-11-21T10:00:00+01:00",
        "2026-11-21",
        "yesterday",
        *[_text(n) for n in (99, 100, 101, 199, 200, 201, 499, 500, 501)],
        _text(200, "😀"),
        _text(201, "😀"),
        _text(20000),
        _text(20001),
        _text(201) + "\ud800",
        *VOCAB["purpose"][:3],
        *VOCAB["legal_basis"][:4],
        *VOCAB["category"][:4],
        *VOCAB["function"][:3],
    ]
)
SCALARS = st.one_of(
    STRINGS,
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=4)), inner, max_size=3),
        st.lists(STRINGS, max_size=3),
        st.just([]),
        st.just({}),
        st.just([subject()]),
        st.just([subject(), 3]),
        st.just({"name": "N"}),
        st.just({"reference": "T", "court": "C", "date": "2026-01-01"}),
    ),
    max_leaves=6,
)
NEW_KEYS = st.one_of(st.sampled_from(KEYS), st.sampled_from(["\ud800", "a\udfff", "x", "Ref"]))


def _containers(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a dict or list inside ``doc`` (the root included)."""
    out = []
    if isinstance(doc, (dict, list)):
        out.append(path)
        items = doc.items() if isinstance(doc, dict) else enumerate(doc)
        for k, v in items:
            out.extend(_containers(v, (*path, k)))
    return out


def _leaves(doc: Any) -> list[tuple[tuple[Any, ...], Any]]:
    """Every (container path, key) whose value is a scalar."""
    out = []
    for path in _containers(doc):
        target = _at(doc, path)
        items = target.items() if isinstance(target, dict) else enumerate(target)
        out.extend((path, k) for k, v in items if not isinstance(v, (dict, list)))
    return out


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        doc = doc[k]
    return doc


@st.composite
def documents(draw: st.DrawFn) -> Any:
    def value() -> Any:
        # Mostly one string or scalar (bounds, ids, dates, text), sometimes a structure;
        # copied, since st.just() gives the same object each time.
        return copy.deepcopy(draw(st.one_of(STRINGS, SCALARS, VALUES)))

    doc = copy.deepcopy(draw(st.sampled_from(STARTS)))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        op = draw(st.sampled_from(["leaf", "leaf", "leaf", "replace", "drop", "add", "reorder"]))
        if op == "leaf":  # one scalar anywhere becomes a string from the list above
            leaves = _leaves(doc)
            if leaves:
                path, key = draw(st.sampled_from(leaves))
                _at(doc, path)[key] = draw(STRINGS)
            continue
        paths = _containers(doc)
        if not paths:
            break
        target = _at(doc, draw(st.sampled_from(paths)))
        if isinstance(target, dict):
            keys = list(target)
            if op == "add" or not keys:
                target[draw(NEW_KEYS)] = value()
            elif op == "drop":
                del target[draw(st.sampled_from(keys))]
            elif op == "reorder":
                items = list(target.items())
                target.clear()
                target.update(reversed(items))
            else:
                target[draw(st.sampled_from(keys))] = value()
        else:
            if op == "add" or not target:
                target.insert(draw(st.integers(0, len(target))), value())
            elif op == "drop":
                del target[draw(st.integers(0, len(target) - 1))]
            elif op == "reorder":
                target.reverse()
            else:
                target[draw(st.integers(0, len(target) - 1))] = value()
    if draw(st.integers(0, 40)) == 40:
        doc = value()  # not an object at all, now and then
    return doc


def _error(e: InputError) -> tuple[str, str | None, str, str | None]:
    return ("refused", e.field, e.message, e.fix)


def _by_models(data: bytes, register: Register) -> tuple[Any, ...]:
    try:
        req = parse_request(data, register, today=TODAY)
    except InputError as e:
        return _error(e)
    return ("accepted", req.model_dump(), facts_of(req), req.model_dump(mode="json"))


def _by_document(data: bytes, register: Register) -> tuple[Any, ...]:
    try:
        doc = parse_document(data, register, today=TODAY)
    except InputError as e:
        return _error(e)
    return ("accepted", doc, facts_of_document(doc), stored_document(doc))


@pytest.mark.parametrize("doc", STARTS)
def test_the_starting_documents_are_accepted_by_both(register: Register, doc: Any) -> None:
    data = json.dumps(doc).encode()
    models = _by_models(data, register)
    assert models[0] == "accepted"
    assert _by_document(data, register) == models


@SETTINGS
@given(doc=documents())
@example(doc=request(reference="\ud800" * 300))  # a surrogate is reported before the length
@example(doc=dict(request(purpose=3), **{"\ud800": 1}))  # a surrogate key: the whole object
@example(doc=request(officer={"name": "x", "\ud800": 1}, reference=3))  # ...after earlier fields
@example(doc=request(purpose="\ud800"))  # an unbounded string: the validator reports it
@example(doc=request(subjects=[3], categories=[]))
@example(doc=dict(request(purpose=3), zzz=1))  # unknown keys come after every field's error
@example(doc=request(court_order={"reference": "T", "court": "C", "date": None}))
@example(doc=request(received_at="2026-11-21T10:00:00"))
@example(doc=request(subjects=[dict(subject(), consent=None)]))
def test_both_readers_accept_and_refuse_the_same_documents(register: Register, doc: Any) -> None:
    data = json.dumps(doc).encode()  # ensure_ascii: lone surrogates travel as \\udXXX escapes
    models = _by_models(data, register)
    event("accepted" if models[0] == "accepted" else f"{models[2][:24]}")
    assert _by_document(data, register) == models


@pytest.mark.parametrize(("name", "data", "field", "message"), CASES, ids=[c[0] for c in CASES])
def test_the_malformed_table_gives_the_same_errors(
    register: Register, name: str, data: Any, field: str, message: str
) -> None:
    raw = json.dumps(data).encode()
    got = _by_document(raw, register)
    assert got == _by_models(raw, register)
    assert got[:2] == ("refused", field) and message in got[2]


@pytest.mark.parametrize(
    ("name", "data", "field", "message"), RAW_CASES, ids=[c[0] for c in RAW_CASES]
)
def test_undecodable_bytes_give_the_same_errors(
    register: Register, name: str, data: bytes, field: str, message: str
) -> None:
    got = _by_document(data, register)
    assert got == _by_models(data, register)
    assert got[:2] == ("refused", field) and message in got[2]


def test_a_reader_that_differs_is_caught(
    register: Register, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The comparison can fail: a reader that checked a bounded string's length before its
    # lone surrogates (the models' order is the other way round) names another fault.
    data = json.dumps(request(reference="\ud800" * 300)).encode()
    assert _by_document(data, register) == _by_models(data, register)
    monkeypatch.setattr(document, "_has_surrogate", lambda s: False)
    assert _by_document(data, register) != _by_models(data, register)


@pytest.mark.parametrize("where", ["top", "subject"])
def test_an_unknown_key_comes_back_cut_to_forty_characters(register: Register, where: str) -> None:
    """An unknown key is the caller's own text: both readers name it, cut short, so the
    CLI's error (no HTTP layer to cut it) never repeats 100,000 characters of it."""
    data = request()
    key = "k" * 100_000
    if where == "top":
        data[key] = 1
    else:
        data["subjects"][0][key] = 1
    raw = json.dumps(data).encode()
    got = _by_document(raw, register)
    assert got == _by_models(raw, register)
    assert got[0] == "refused"
    assert got[1].endswith("k" * 40) and "k" * 41 not in got[1]
