"""RFC 8785 (JCS) canonical JSON for ledger entries, and a strict parser for one entry.

Spec: https://www.rfc-editor.org/rfc/rfc8785 (serialisation by the ``rfc8785`` package).
Entries of only objects with ASCII keys, lists, strings, safe integers, booleans and null
(every entry carewall writes) take a fast path through ``msgspec``'s encoder with sorted
keys, whose output for exactly those values is the RFC 8785 form: members sorted
(code-point order equals UTF-16 order for ASCII keys), no whitespace, integers in decimal,
and strings escaped as ECMAScript's ``JSON.stringify`` does (quote, backslash and the five
short escapes; other control characters as lower-case six-character escapes; everything
else literal; a test compares every code point's escaping with ``rfc8785``'s). Anything
else (a float, a non-ASCII key, a lone surrogate) goes to ``rfc8785``. A property test
holds the two equal.

Inputs must be I-JSON (RFC 7493): no NaN or infinities, no duplicate member names, integers
within ±2**53, valid Unicode. Error messages name the problem, never the offending value,
since entries may be built from request data.

:func:`parse_canonical` is the other direction: it proves that given bytes *are* the RFC 8785
form of a JSON object and returns the object. Its fast path (pure ASCII bytes without
fractions or exponents and without a 16-digit number: every entry carewall writes) parses
with ``msgspec`` (a number with a fraction or exponent stops it) and re-encodes as above;
equal bytes prove them canonical by the same argument (ASCII input means every string, keys
too, is ASCII, so code-point order is UTF-16 order; a repeated member name comes back once,
so never equal). Anything else (non-ASCII bytes, a fraction or exponent, an integer that may
be beyond ±(2**53 - 1), a mismatch to be explained) takes the reference check: a strict
parse, then ``rfc8785``, then a byte comparison. A differential property test holds the two
paths to the same verdict.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import rfc8785

from carewall.errors import InputError

__all__ = ["CanonicalError", "canonical", "fast_canonical", "parse_canonical", "parse_entry"]

_FIX = "entries must be JSON objects of strings, integers, booleans, null, lists and objects"


_MAX_SAFE = 2**53 - 1
_MAX_DEPTH = 64
# Members sorted: for the values _plain admits, msgspec writes the RFC 8785 form (a test
# compares every code point's escaping with rfc8785's).
_encode = msgspec.json.Encoder(order="sorted").encode


class _Fraction(Exception):
    """A number with a fraction or exponent: the fast path leaves it to the reference."""


def _no_fast_fraction(_text: str) -> Any:
    raise _Fraction


_decode = msgspec.json.Decoder(float_hook=_no_fast_fraction).decode
# Where a number may start in bytes the fast path can accept (no whitespace: after ":", ","
# or "["), each digit as "0", the separators as "S", "-" kept, all else "x". An integer
# beyond ±(2**53 - 1) has 16 digits: "S" or "S-" then sixteen "0"s. Digits inside strings
# (hex hashes) seldom follow a separator, so they keep the fast path.
_NUMBERS = bytes(
    ord("0") if 48 <= c <= 57 else ord("S") if c in b":,[" else c if c == 45 else ord("x")
    for c in range(256)
)
_LONG = b"S" + b"0" * 16
_LONG_NEGATIVE = b"S-" + b"0" * 16


def _plain(obj: Any, depth: int = 0) -> bool:
    """True when ``obj`` holds only values msgspec's encoder writes as RFC 8785 does.

    Scalars are tested inline (no call per value): this runs once per entry written.
    """
    if depth > _MAX_DEPTH:
        return False
    t = type(obj)
    if t is dict:
        items: Any = obj.items()
    elif t is list:
        items = ((None, v) for v in obj)
    else:
        return _plain({"": obj}, depth)
    for k, v in items:
        if t is dict and (type(k) is not str or not k.isascii()):
            return False
        tv = type(v)
        if tv is str or tv is bool or v is None:
            continue
        if tv is int:
            if not -_MAX_SAFE <= v <= _MAX_SAFE:
                return False
            continue
        if (tv is dict or tv is list) and _plain(v, depth + 1):
            continue
        return False
    return True


def canonical(obj: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``obj``."""
    if _plain(obj):
        try:
            return _encode(obj)
        except (msgspec.EncodeError, UnicodeEncodeError):
            pass  # a lone surrogate: rfc8785 refuses it with its own error below
    try:
        return rfc8785.dumps(obj)
    except rfc8785.FloatDomainError as e:
        raise InputError("NaN and infinite numbers are not allowed in JSON", fix=_FIX) from e
    except rfc8785.IntegerDomainError as e:
        raise InputError("integer is outside the exact JSON range (±2**53)", fix=_FIX) from e
    except rfc8785.CanonicalizationError as e:
        # The library's message names a type or "keys must be strings": no values.
        raise InputError(f"not canonical JSON: {e}", fix=_FIX) from e
    except UnicodeError as e:
        raise InputError("string is not valid Unicode", fix=_FIX) from e
    except RecursionError as e:
        raise InputError("JSON nests too deeply", fix=_FIX) from e


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise InputError("duplicate member name in a JSON object", fix="give every key once")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise InputError(f"{name} is not valid JSON", fix=_FIX)


def parse_entry(line: str | bytes) -> dict[str, Any]:
    """Parse one JSON object strictly (one JSONL line); InputError otherwise."""
    if isinstance(line, bytes | bytearray):
        try:
            line = bytes(line).decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError("entry is not valid UTF-8", field="entry") from e
    try:
        obj = json.loads(line, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except InputError as e:
        e.field = e.field or "entry"
        raise
    except (json.JSONDecodeError, RecursionError) as e:
        pos = f" at character {e.pos}" if isinstance(e, json.JSONDecodeError) else ""
        raise InputError(f"entry is not valid JSON{pos}", field="entry", fix=_FIX) from e
    if not isinstance(obj, dict):
        raise InputError("entry must be a JSON object", field="entry", fix="wrap it in {...}")
    return obj


class CanonicalError(ValueError):
    """Bytes that are not the RFC 8785 canonical form of a JSON object; says why, not what."""


def _no_fraction(_text: str) -> Any:
    raise CanonicalError("a number is not an integer (entries hold integers only)")


def _no_constant_here(name: str) -> Any:
    raise CanonicalError(f"{name} is not JSON")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise CanonicalError("a member name appears twice in one object")
        out[k] = v
    return out


def fast_canonical(data: bytes) -> dict[str, Any] | None:
    """The object when the fast path proves ``data`` its RFC 8785 form; None when it cannot.

    None is no verdict: the bytes may still be canonical (non-ASCII, a fraction) or not,
    and :func:`parse_canonical` hands them to the reference check, which decides and says
    why. The fast path never decides a number with a fraction or exponent, so it needs no
    ``floats`` switch: the reference applies it.
    """
    if not data.isascii():
        return None
    shape = data.translate(_NUMBERS)
    if _LONG in shape or _LONG_NEGATIVE in shape:
        return None  # a number of 16 digits or more: perhaps beyond ±(2**53 - 1)
    try:
        obj = _decode(data)
    except (_Fraction, msgspec.DecodeError, RecursionError):
        return None
    if type(obj) is not dict:
        return None
    return obj if _encode(obj) == data else None


def parse_canonical(data: bytes, *, floats: bool = True, fast: bool = True) -> dict[str, Any]:
    """The JSON object whose RFC 8785 canonical UTF-8 form is exactly ``data``.

    Raises :class:`CanonicalError` otherwise. ``floats=False`` also refuses any number with
    a fraction or exponent (canonical or not). ``fast=False`` skips the fast path (tests
    compare the two).
    """
    if fast:
        obj = fast_canonical(data)
        if obj is not None:
            return obj
    # Not canonical, or beyond the fast path: the reference check decides, and says why.
    return _reference(data, floats)


def _reference(data: bytes, floats: bool) -> dict[str, Any]:
    try:
        obj = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_unique,
            parse_float=float if floats else _no_fraction,
            parse_constant=_no_constant_here,
        )
    except CanonicalError:
        raise
    except (UnicodeError, ValueError, RecursionError) as e:
        raise CanonicalError("is not a JSON object in valid UTF-8") from e
    if not isinstance(obj, dict):
        raise CanonicalError("is not a JSON object")
    try:
        canon = rfc8785.dumps(obj)
    except rfc8785.IntegerDomainError as e:
        raise CanonicalError("an integer is outside the exact JSON range (±2**53)") from e
    except rfc8785.FloatDomainError as e:
        raise CanonicalError("a number is outside the range of JSON numbers") from e
    except (rfc8785.CanonicalizationError, UnicodeError, ValueError, RecursionError) as e:
        raise CanonicalError("cannot be written in canonical form") from e
    if canon != data:
        raise CanonicalError("is not in RFC 8785 canonical form")
    return obj
