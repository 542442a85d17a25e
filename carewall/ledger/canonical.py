"""RFC 8785 (JCS) canonical JSON for ledger entries, and a strict parser for one entry.

Spec: https://www.rfc-editor.org/rfc/rfc8785 (serialisation by the ``rfc8785`` package).
Entries of only objects with ASCII keys, lists, strings, safe integers, booleans and null
(every entry carewall writes) take a fast path through the standard library's C encoder,
whose output for exactly those values is the RFC 8785 form: members sorted (code-point
order equals UTF-16 order for ASCII keys), no whitespace, integers in decimal, and strings
escaped as ECMAScript's ``JSON.stringify`` does (quote, backslash and the five short
escapes; other control characters as lower-case six-character escapes; everything else
literal). Anything else (a float, a
non-ASCII key, a lone surrogate) goes to ``rfc8785``. A property test holds the two equal.

Inputs must be I-JSON (RFC 7493): no NaN or infinities, no duplicate member names, integers
within ±2**53, valid Unicode. Error messages name the problem, never the offending value,
since entries may be built from request data.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from carewall.errors import InputError

__all__ = ["canonical", "parse_entry"]

_FIX = "entries must be JSON objects of strings, integers, booleans, null, lists and objects"


_MAX_SAFE = 2**53 - 1
_FAST = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)
_MAX_DEPTH = 64


def _plain(obj: Any, depth: int = 0) -> bool:
    """True when ``obj`` holds only values the standard encoder writes as RFC 8785 does.

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
            return _FAST.encode(obj).encode("utf-8")
        except UnicodeEncodeError:
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
