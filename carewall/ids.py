"""The one identifier validator (contract §1): ASCII only, matched whole.

Every id that carewall accepts or writes passes through here: vocabulary ids, organisation
and reviewer ids, rule ids, offence ids, request ids, commitments and hashes. Python's
``re.match(r"^…$")`` accepts a trailing newline (``$`` matches before it), which once let
``immigration_act_1971_s24\\n`` pass as an unknown offence; so every check here is
``str.isascii()`` plus :func:`re.fullmatch`, and nothing else in the package matches ids.

The patterns are also written into the ledger's JSON Schema (``/log/schema``), where
ECMA-262 anchors already match the whole string.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from carewall.errors import InputError

__all__ = [
    "PATTERNS",
    "IdKind",
    "check_id",
    "is_id",
]

IdKind = Literal[
    "vocab",
    "organisation",
    "reviewer",
    "rule",
    "offence",
    "request",
    "commitment",
    "hash",
    "sha256",
]

# Written without ^ and $: they are matched whole with re.fullmatch, and the JSON Schema
# wraps them in ^(?:…)$.
PATTERNS: Final[dict[IdKind, str]] = {
    # closed-vocabulary ids: functions, purposes, bases, categories, roles
    "vocab": r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*",
    # organisation and reviewer ids: lowercase, digits, single '-' between parts
    "organisation": r"[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?",
    "reviewer": r"[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?",
    # rule ids: "pledge/…", "local/…", or a bare built-in like "default-deny"
    "rule": r"[a-z0-9][a-z0-9_-]{0,62}(?:/[a-z0-9][a-z0-9_-]{0,62}){0,3}",
    # statute ids: <act words>_<year>_s<section>[letters](_<subsection>)*; a section
    # number has no leading zero, so s24 has one spelling (s024 would escape the
    # immigration-offence rule, which compares ids as written)
    "offence": r"[a-z]+(?:_[a-z]+)*_[0-9]{4}_s[1-9][0-9]{0,3}[a-z]{0,3}(?:_[a-z0-9]{1,8}){0,6}",
    # carewall's own opaque request ids
    "request": r"r[0-9a-f]{20}",
    # HMAC-SHA256 commitments and raw SHA-256 digests, lowercase hex
    "commitment": r"[0-9a-f]{64}",
    "hash": r"[0-9a-f]{64}",
    "sha256": r"sha256:[0-9a-f]{64}",
}

_COMPILED: Final[dict[IdKind, re.Pattern[str]]] = {
    k: re.compile(v, re.ASCII) for k, v in PATTERNS.items()
}

_FIX: Final[dict[IdKind, str]] = {
    "vocab": "use an id from the vocabulary: lowercase ASCII letters, digits and '_'",
    "organisation": "use lowercase ASCII letters, digits and '-', at most 100 characters",
    "reviewer": "use lowercase ASCII letters, digits and '-', at most 100 characters",
    "rule": "use lowercase ASCII letters, digits, '-', '_' and '/', e.g. local/police-suspect",
    "offence": "use a statute id in lowercase ASCII, the section number without leading "
    "zeros, e.g. theft_act_1968_s1 or immigration_act_1971_s24_1_b",
    "request": "use the request id carewall gave (r followed by 20 hex digits)",
    "commitment": "64 lowercase hex digits",
    "hash": "64 lowercase hex digits",
    "sha256": "sha256: followed by 64 lowercase hex digits",
}


def is_id(value: object, kind: IdKind) -> bool:
    """True when ``value`` is a str, all ASCII, and matches ``kind``'s pattern whole."""
    return (
        isinstance(value, str) and value.isascii() and _COMPILED[kind].fullmatch(value) is not None
    )


def check_id(value: object, kind: IdKind, *, field: str) -> str:
    """``value`` if it is a valid ``kind`` id, else an InputError naming ``field``.

    The message never echoes the value: a malformed id may be free text (a name).
    """
    if not is_id(value, kind):
        what = "is not a string" if not isinstance(value, str) else f"is not a valid {kind} id"
        raise InputError(what, field=field, fix=_FIX[kind])
    assert isinstance(value, str)
    return value
