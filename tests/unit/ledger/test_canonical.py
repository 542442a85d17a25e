"""RFC 8785 canonical entries and the strict one-line entry parser."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from carewall.errors import InputError
from carewall.ledger.canonical import canonical, parse_entry


def test_rfc8785_key_order_and_numbers() -> None:
    obj = {"b": 1, "a": [True, None, 1.5, -0.0], "é": "x", "A": {"z": 1e21, "y": 1e-7}}
    assert canonical(obj) == (
        '{"A":{"y":1e-7,"z":1e+21},"a":[true,null,1.5,0],"b":1,"é":"x"}'.encode()
    )


def test_rfc8785_string_escapes() -> None:
    assert canonical({"s": '\u2028\n"\\\x1f'}) == b'{"s":"\xe2\x80\xa8\\n\\"\\\\\\u001f"}'


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        pytest.param(float("nan"), "NaN", id="nan"),
        pytest.param({"x": float("inf")}, "infinite", id="inf"),
        pytest.param({"x": 2**60}, "range", id="big-int"),
        pytest.param({1: "x"}, "keys", id="int-key"),
        pytest.param({"x": b"bytes"}, "bytes", id="bytes"),
        pytest.param({"x": {1, 2}}, "set", id="set"),
        pytest.param({"x": "\ud800"}, "UTF-8", id="lone-surrogate"),
    ],
)
def test_canonical_refuses_non_json(obj: Any, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        canonical(obj)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6))
def test_parse_canonical_round_trip(obj: dict[str, Any]) -> None:
    data = canonical(obj)
    assert parse_entry(data) == obj
    assert canonical(parse_entry(data.decode())) == data
    # canonical form is independent of how the input was written
    assert canonical(json.loads(json.dumps(obj, indent=2, sort_keys=False))) == data


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("[1, 2]", id="array"),
        pytest.param('"text"', id="string"),
        pytest.param("{", id="truncated"),
        pytest.param('{"a": NaN}', id="nan"),
        pytest.param('{"a": Infinity}', id="infinity"),
        pytest.param('{"a": 1, "a": 2}', id="duplicate-key"),
        pytest.param(b'{"a": "\xff"}', id="bad-utf8"),
        pytest.param("", id="empty"),
    ],
)
def test_parse_entry_refuses(line: str | bytes) -> None:
    with pytest.raises(InputError) as err:
        parse_entry(line)
    assert err.value.field == "entry"


def test_parse_entry_error_does_not_echo_values() -> None:
    with pytest.raises(InputError) as err:
        parse_entry('{"subject": "9434765919", "subject": "9434765919"}')
    assert "9434765919" not in str(err.value)


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(alphabet=st.characters(codec="utf-8"))
    | st.sampled_from(["\u2028\u2029", "\x7f", "<&>", "\x00\x1f\b\f\n\r\t", '"\\/', "é😀"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(max_size=6, alphabet=st.characters(codec="utf-8")), inner, max_size=4
        )
    ),
    max_leaves=20,
)


@given(_json_values)
def test_the_fast_path_writes_exactly_what_rfc8785_writes(value: object) -> None:
    """The standard-library fast path (every entry carewall writes) is RFC 8785 byte for byte,
    non-ASCII keys and all (those go to the reference encoder)."""
    assert canonical(value) == rfc8785.dumps(value)


def test_a_lone_surrogate_is_refused_on_the_fast_path_too() -> None:
    with pytest.raises(InputError, match="UTF-8"):
        canonical({"kind": "notice", "subject": "\ud800"})


def test_an_unsafe_integer_is_refused_not_written_by_the_fast_path() -> None:
    with pytest.raises(InputError, match="exact JSON range"):
        canonical({"n": 2**53})
