"""RFC 8785 (JCS) canonical JSON for ledger entries, and a strict parser for one entry.

Spec: https://www.rfc-editor.org/rfc/rfc8785 (serialisation by the ``rfc8785`` package).
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


def canonical(obj: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``obj``."""
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
