"""JSON held in a column, read without loss and rewritten without a key
(:mod:`carewall.clean.jsonvalue`). Every value is invented."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carewall.clean.jsonvalue import (
    MAX_JSON_CHARS,
    Num,
    Obj,
    Step,
    dumps,
    parse,
    removal,
    render,
    segment,
    strip,
)


@pytest.mark.parametrize(
    "text",
    ['"POL"', "826", "null", "true", "{bad", "[1, 2", '{"a": NaN}', '{"a": Infinity}',
     '{"a": 1} trailing', "", "   ", "\ufeff{}", "{'a': 1}", "POL"],
)  # fmt: skip
def test_only_objects_and_arrays_of_strict_json_are_read(text: str) -> None:
    assert parse(text) is None


def test_too_long_and_too_deep_are_not_json_and_do_not_raise() -> None:
    assert parse('{"a": "' + "x" * MAX_JSON_CHARS + '"}') is None
    assert parse("[" * 200_000 + "]" * 200_000) is None  # RecursionError, caught
    assert parse('{"a":' * 5_000 + "1" + "}" * 5_000) is None


def test_members_keep_their_order_duplicates_and_number_text() -> None:
    got = parse(' {"b": 1.10, "a": [1e5, -0], "b": true} ')
    assert isinstance(got, Obj)
    assert got == [("b", Num("1.10")), ("a", [Num("1e5"), Num("-0")]), ("b", True)]
    assert dumps(got) == '{"b":1.10,"a":[1e5,-0],"b":true}'


def test_dumps_keeps_strings_and_escapes_lone_surrogates() -> None:
    got = parse('["Zoë", "a\\"b\\\\c\\n", "\\ud800", "\\u00e9"]')
    assert got is not None
    out = dumps(got)
    out.encode("utf-8")  # no lone surrogate left raw
    assert json.loads(out) == ["Zoë", 'a"b\\c\n', "\ud800", "é"]


def test_dumps_any_depth() -> None:
    deep = parse("[" * 900 + "]" * 900)
    assert deep is not None and dumps(deep) == "[" * 900 + "]" * 900


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                  max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=300)
@given(st.lists(JSON_VALUES, max_size=4) | st.dictionaries(st.text(max_size=4), JSON_VALUES))
def test_dumps_writes_back_what_was_read(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1)):
        parsed = parse(text)
        assert parsed is not None
        assert json.loads(dumps(parsed)) == json.loads(text)
        assert parse(dumps(parsed)) == parsed


@pytest.mark.parametrize(
    ("key", "data"),
    [("nationality", False), ("birth_country", False), ("Country of birth", False),
     ("nat_2", False), ("q101_nationality", False), ("A123456789012", True),
     ("943 476 5919", True), ("2024-01-31", True), ("2024-01-31T10:00:00Z", True),
     ("17", True), ("jane@example.org", True), ("3f2a9c1e-8b7d-4c6e-9a5b-1d2e3f4a5b6c", True),
     ("x" * 65, True)],
)  # fmt: skip
def test_keys_that_look_like_data_are_not_shown(key: str, data: bool) -> None:
    assert (segment(key) is Step.DATA) == data


def test_paths_are_shown_with_keys_never_values() -> None:
    assert render("demographics", ("nationality",)) == "demographics.nationality"
    assert render("extra", (Step.ARRAY, "birth_country")) == "extra[].birth_country"
    assert render("extra", ("people", Step.ARRAY, "nat")) == "extra.people[].nat"
    assert render("x", ("pupils", Step.ANY, "nat")) == "x.pupils.*.nat"
    assert render("x", (Step.DATA, "nat")) == "x.#.nat"
    assert render("x", ("a.b", "c d", 'q"')) == 'x["a.b"].c d["q\\""]'


def test_removal_names_the_last_key() -> None:
    assert removal(("nationality",)) == (("nationality",), 0)
    assert removal(("extra", Step.ARRAY, "cob")) == (("extra", Step.ARRAY, "cob"), 0)
    assert removal(("nationalities", Step.ARRAY)) == (("nationalities",), 1)
    assert removal((Step.ARRAY,)) is None and removal(()) is None


def test_strip_removes_the_key_wherever_the_path_leads_and_nothing_else() -> None:
    text = json.dumps({
        "nationality": "POL", "first_language": "POL", "n": 1,
        "extra": [{"birth_country": "GBR", "x": 1}, {"birth_country": {"code": "ROU"}}, 3],
        "nationalities": ["POL", "GBR"],
        "pupils": {"A123456789012": {"nat": "NGA"}, "meta": {"nat": "keep"}},
    })  # fmt: skip
    targets = [removal(p) for p in [("nationality",), ("extra", Step.ARRAY, "birth_country"),
               ("nationalities", Step.ARRAY), ("pupils", Step.DATA, "nat")]]  # fmt: skip
    got = strip(text, [t for t in targets if t is not None])
    assert got is not None
    new, removed = got
    assert removed == [["POL"], ["GBR"], ['["POL","GBR"]'], ["NGA"]]
    assert new is not None and json.loads(new) == {
        "first_language": "POL", "n": 1,
        "extra": [{"x": 1}, {"birth_country": {"code": "ROU"}}, 3],  # an object is not a code
        "pupils": {"A123456789012": {}, "meta": {"nat": "keep"}},
    }  # fmt: skip


def test_strip_leaves_what_it_cannot_read_and_what_holds_nothing() -> None:
    assert strip("{bad", [(("nationality",), 0)]) is None
    assert strip('{"nationality": null}', [(("nationality",), 0)]) == (None, [[]])
    assert strip('{"first_language": "POL"}', [(("nationality",), 0)]) == (None, [[]])
    got = strip('{"a": {"nationality": "POL"}}', [((Step.ANY, "nationality"), 0)])
    assert got == ('{"a":{}}', [["POL"]])
