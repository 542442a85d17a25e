"""``parse_canonical``: the fast path gives the reference check's verdict on any bytes.

The reference is a strict parse (no duplicate names, no NaN), ``rfc8785`` and a byte
comparison. The fast path (msgspec, pure ASCII, no fractions, no 16-digit runs) must accept
exactly what the reference accepts, with the same object, and hand everything it cannot
decide to the reference. Inputs: random JSON (non-ASCII and astral text, escapes and
control characters, big and small integers, floats, nesting, keys whose UTF-16 order
differs from their code-point order) written canonically, written in other common ways,
and mutated byte by byte.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from carewall.ledger.canonical import (
    CanonicalError,
    canonical,
    fast_canonical,
    parse_canonical,
)

# ASCII (with every control character and the escapes' letters), the top of the BMP and
# astral characters: U+E000..U+FFFF sort after U+10000.. in UTF-16 but before in code points.
_CHARS = st.one_of(
    st.characters(min_codepoint=0, max_codepoint=0x7F),
    st.sampled_from(["é", "\u2028", "\ue000", "\uffff", "\U00010000", "😀", "\x7f"]),
)
_TEXT = st.text(_CHARS, max_size=6)
_INTS = st.one_of(
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.sampled_from([0, -1, 2**53 - 1, -(2**53) + 1, 2**53, 10**15, 10**16, -(10**20)]),
)
_FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.5, -0.0, 1.0, 1e21, 1e-7, 5e-324, 1.7976931348623157e308]),
)
_SCALARS = st.none() | st.booleans() | _INTS | _FLOATS | _TEXT
JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=5),
    max_leaves=16,
)
OBJECTS = st.dictionaries(_TEXT, JSON, max_size=6)


def verdict(data: bytes, *, fast: bool, floats: bool = True) -> tuple[str, Any]:
    try:
        return "ok", parse_canonical(data, fast=fast, floats=floats)
    except CanonicalError:
        return "refused", None


def same_verdict(data: bytes) -> None:
    for floats in (True, False):
        fast = verdict(data, fast=True, floats=floats)
        full = verdict(data, fast=False, floats=floats)
        assert fast[0] == full[0], data
        assert json.dumps(fast[1], sort_keys=True) == json.dumps(full[1], sort_keys=True)
    try:
        obj = fast_canonical(data)
    except CanonicalError:
        assert full[0] == "refused"  # what the fast path refuses outright, the reference does
        return
    if obj is not None:  # the fast path's own "yes" is always the reference's "yes"
        assert rfc8785.dumps(obj) == data


def _written(obj: dict[str, Any]) -> list[bytes]:
    """The object as canonical bytes (when it has a canonical form) and other common ways."""
    out: list[bytes] = []
    with contextlib.suppress(rfc8785.CanonicalizationError):
        out.append(rfc8785.dumps(obj))
    for ascii_only in (True, False):
        for sort in (True, False):
            text = json.dumps(obj, ensure_ascii=ascii_only, sort_keys=sort, separators=(",", ":"))
            out.append(text.encode("utf-8", "surrogatepass"))
    out.append(json.dumps(obj, sort_keys=True).encode())
    return out


@settings(deadline=None, max_examples=400)
@given(OBJECTS)
def test_fast_and_reference_agree_on_objects_written_many_ways(obj: dict[str, Any]) -> None:
    for data in _written(obj):
        same_verdict(data)


@settings(deadline=None, max_examples=400)
@given(OBJECTS, st.data())
def test_fast_and_reference_agree_on_mutated_bytes(
    obj: dict[str, Any], data: st.DataObject
) -> None:
    try:
        canon = rfc8785.dumps(obj)
    except rfc8785.CanonicalizationError:
        canon = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    at = data.draw(st.integers(0, len(canon)))
    piece = data.draw(
        st.sampled_from(
            [b" ", b"\\u0041", b'\\"', b"\\/", b"0", b"-0", b".0", b"e1", b",", b'"a":1,', b"\xc3"]
        )
    )
    cut = data.draw(st.integers(0, 2))
    same_verdict(canon[:at] + piece + canon[at + cut :])
    same_verdict(canon[:at] + canon[at + cut :])


@settings(deadline=None, max_examples=300)
@given(OBJECTS)
def test_canonical_bytes_are_accepted_with_their_object(obj: dict[str, Any]) -> None:
    try:
        canon = rfc8785.dumps(obj)
    except rfc8785.CanonicalizationError:
        return
    parsed = json.loads(canon)
    if _inexact_int(parsed):
        # A float such as 1e16 is written as an integer token, which I-JSON bounds: refused.
        with pytest.raises(CanonicalError, match="range"):
            parse_canonical(canon)
    else:
        assert parse_canonical(canon) == parsed


def _inexact_int(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_inexact_int(v) for v in value.values())
    if isinstance(value, list):
        return any(_inexact_int(v) for v in value)
    return type(value) is int and abs(value) > 2**53 - 1


@pytest.mark.parametrize(
    ("data", "canonical"),
    [
        pytest.param(b'{"a":1,"b":[true,null,"x\\n\\u001f"]}', True, id="plain"),
        pytest.param(b'{"\xef\xbf\xbf":1,"\xf0\x90\x80\x80":2}', False, id="code-point-order"),
        pytest.param(b'{"\xf0\x90\x80\x80":2,"\xef\xbf\xbf":1}', True, id="utf16-order"),
        pytest.param(b'{"a":"\\u0041"}', False, id="needless-escape"),
        pytest.param(b'{"a":"\\u001F"}', False, id="upper-case-escape"),
        pytest.param(b'{"a":"\\b\\f"}', True, id="short-escapes"),
        pytest.param(b'{"a":"\\u0008"}', False, id="long-form-of-a-short-escape"),
        pytest.param(b'{"a":1e+21}', True, id="exponent"),
        pytest.param(b'{"a":1.0}', False, id="whole-float"),
        pytest.param(b'{"a":-0}', False, id="minus-zero"),
        pytest.param(b'{"a":9007199254740991}', True, id="largest-exact-integer"),
        pytest.param(b'{"a":9007199254740992}', False, id="beyond-exact-integers"),
        pytest.param(b'{"a":1,"a":1}', False, id="duplicate-name"),
        pytest.param(b'{"a":NaN}', False, id="nan"),
        pytest.param(b'{"a":"\\ud800"}', False, id="lone-surrogate"),
        pytest.param(b'{"a":1} ', False, id="trailing-space"),
        pytest.param(b'[{"a":1}]', False, id="not-an-object"),
        pytest.param(b'{"a":1e21}', False, id="exponent-written-as-orjson-writes-it"),
        pytest.param(b'{"a":-9007199254740992}', False, id="beyond-exact-negative-integers"),
        pytest.param(b'{"a":18446744073709551616}', False, id="beyond-64-bit-integers"),
        pytest.param(b'{"a":[[[{"b":0.5}]]]}', True, id="nested-fraction"),
        pytest.param(b'{"a":{"b":1},"a":{"b":1}}', False, id="duplicate-object-member"),
        pytest.param(b'\xef\xbb\xbf{"a":1}', False, id="byte-order-mark"),
        pytest.param(b'{"a":"\\u2028"}', False, id="escaped-line-separator"),
        pytest.param(b'{"a":"\x7f"}', True, id="delete-literal"),
        pytest.param(b'{"a":"\\u007f"}', False, id="delete-escaped"),
        pytest.param(b'{"a":1000000000000000}', True, id="sixteen-digit-exact-integer"),
        pytest.param(b'{"a":"12345678901234567"}', True, id="digits-in-a-string"),
        pytest.param(b'{"a":"x:12345678901234567"}', True, id="separator-and-digits-in-a-string"),
        pytest.param(b'{"a":[1,12345678901234567]}', False, id="long-integer-in-a-list"),
        pytest.param(b'{"a":[-12345678901234567]}', False, id="long-negative-first-in-a-list"),
        pytest.param(b'{"a":-9007199254740991}', True, id="least-exact-integer"),
        pytest.param(b'{"a":1e3}', False, id="integer-written-with-exponent"),
    ],
)
def test_named_edges(data: bytes, canonical: bool) -> None:
    same_verdict(data)
    assert verdict(data, fast=True)[0] == ("ok" if canonical else "refused")


def test_every_code_point_is_escaped_as_rfc8785_escapes_it() -> None:
    """The fast paths rest on orjson writing every string exactly as RFC 8785 does."""
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF:
            continue  # lone surrogates: orjson refuses them and rfc8785 decides
        obj = {"s": chr(c)}
        assert canonical(obj) == rfc8785.dumps(obj), hex(c)


def test_deep_nesting_is_decided_by_the_reference_without_recursing() -> None:
    deep = b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert fast_canonical(deep) is None
    same_verdict(deep)


def test_hex_digests_keep_the_fast_path() -> None:
    """Digits inside a digest, not right after a separator, are decided fast."""
    data = b'{"policy":"sha256:ab' + b"0123456789" * 6 + b'cd","v":1}'
    assert fast_canonical(data) == {"policy": "sha256:ab" + "0123456789" * 6 + "cd", "v": 1}
