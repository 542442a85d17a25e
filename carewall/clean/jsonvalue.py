"""JSON held in a text column ("extra fields", "demographics" blobs): read without loss,
named by key paths, and rewritten without a key (pure, no I/O).

A value is read only when it is a JSON object or array of at most :data:`MAX_JSON_CHARS`
characters that Python's ``json`` parses (strict JSON: no ``NaN`` or ``Infinity``); anything
else (malformed, a bare string or number, too long, nested too deep for the parser) is simply
not JSON, and no error ever shows it. Objects keep their members in order, duplicate keys
included (:class:`Obj`), and numbers keep the text they were written with (:class:`Num`),
so a rewritten value differs from the original only by the members taken out and by
whitespace (:func:`dumps` writes compact JSON).

A key path names where values lie: object keys, :data:`Step.ARRAY` for each item of an
array, :data:`Step.DATA` for a key that looks like data rather than a field name (a pupil
number, a date, an e-mail address: see :func:`segment`), and :data:`Step.ANY` for every key
of an object that holds too many distinct keys to be a record (a map keyed by data). Paths
are shown with :func:`render`; a path shows keys, never a value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from enum import Enum
from functools import lru_cache
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any, NoReturn

__all__ = [
    "JSON_BLANKS",
    "MAX_JSON_CHARS",
    "KeyPath",
    "Num",
    "Obj",
    "Step",
    "Target",
    "dumps",
    "looks_like_json",
    "parse",
    "removal",
    "render",
    "segment",
    "strip",
    "text_of",
]

MAX_JSON_CHARS = 1_000_000  # longer values are not read (nor rewritten)


class Step(Enum):
    ARRAY = "[]"  # each item of an array
    ANY = "*"  # every key of an object holding many distinct keys (a map keyed by data)
    DATA = "#"  # a key that looks like data, not like a field name


KeyPath = tuple[str | Step, ...]


class Obj(list[tuple[str, Any]]):
    """A JSON object: its members in order, duplicate keys kept."""


class Num:
    """A JSON number, as written (``1.10`` stays ``1.10``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Num) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Num({self.text!r})"


def _no_constant(name: str) -> NoReturn:
    raise ValueError("not strict JSON")  # NaN, Infinity, -Infinity


_DECODER = json.JSONDecoder(
    object_pairs_hook=Obj, parse_float=Num, parse_int=Num, parse_constant=_no_constant
)
JSON_BLANKS = " \t\r\n"  # what JSON takes as whitespace


def looks_like_json(text: str) -> bool:
    """Cheap: begins with ``{`` or ``[`` and ends with ``}`` or ``]`` (JSON whitespace aside)."""
    t = text.strip(JSON_BLANKS)
    return t[:1] in ("{", "[") and t[-1:] in ("}", "]")


def parse(text: str) -> Obj | list[Any] | None:
    """The object or array ``text`` holds, or None when it is not one (see the module)."""
    if len(text) > MAX_JSON_CHARS or not looks_like_json(text):
        return None
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, list) else None


# Pupil numbers (A123456789012), NHS numbers, dates and times, plain numbers, UUIDs, e-mail
# addresses, and anything over 64 characters: keys like these are data, not field names.
_DATA_KEY = re.compile(
    r"[A-Za-z]{0,2}[0-9][0-9 ._:/+\-T]*[A-Za-z]?|[0-9A-Fa-f]{8}-?[0-9A-Fa-f\-]{24,28}|.*@.*|.{65,}",
    re.DOTALL,
)


@lru_cache(maxsize=4096)
def segment(key: str) -> str | Step:
    """How a key shows in a path: itself, or :data:`Step.DATA` when it looks like data."""
    return Step.DATA if _DATA_KEY.fullmatch(key) else key


_PLAIN_KEY = re.compile(r"[^.\[\]\"*#\x00-\x1f\x7f]+")


def render(column: str, path: KeyPath) -> str:
    """``demographics.nationality``, ``extra[].birth_country``, ``records.*.nat``; a key
    holding dots, brackets or the like is quoted: ``extra["a.b"]``."""
    out = [column]
    for s in path:
        if s is Step.ARRAY:
            out.append("[]")
        elif isinstance(s, Step):
            out.append("." + s.value)
        elif _PLAIN_KEY.fullmatch(s) and s == s.strip():
            out.append("." + s)
        else:
            out.append("[" + json.dumps(s) + "]")
    return "".join(out)


def _string(s: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the source): keep it escaped
        return str(encode_basestring_ascii(s))
    return str(encode_basestring(s))


class _Lit:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


_COMMA, _OPEN_OBJ, _CLOSE_OBJ = _Lit(","), _Lit("{"), _Lit("}")
_OPEN_ARR, _CLOSE_ARR = _Lit("["), _Lit("]")


def dumps(value: Any) -> str:
    """Compact JSON text of a value :func:`parse` returned (iterative: any depth)."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, _Lit | Num):
            out.append(v.text)
        elif isinstance(v, str):
            out.append(_string(v))
        elif v is None:
            out.append("null")
        elif v is True or v is False:
            out.append("true" if v else "false")
        elif isinstance(v, Obj):
            parts: list[Any] = [_OPEN_OBJ]
            for i, (k, item) in enumerate(v):
                parts.extend(([_COMMA] if i else []) + [_Lit(_string(k) + ":"), item])
            parts.append(_CLOSE_OBJ)
            stack.extend(reversed(parts))
        elif isinstance(v, list):
            parts = [_OPEN_ARR]
            for i, item in enumerate(v):
                parts.extend(([_COMMA] if i else []) + [item])
            parts.append(_CLOSE_ARR)
            stack.extend(reversed(parts))
        else:
            raise TypeError(f"not a parsed JSON value: {type(v).__name__}")
    return "".join(out)


def text_of(value: Any) -> str:
    """A scalar as a column would hold it (a string as it is, a number as written, true,
    false); an object or array as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, Num):
        return value.text
    if value is True or value is False:
        return "true" if value else "false"
    return dumps(value)


# ----- removing a key ------------------------------------------------------------------------

# What a purge removes for a key path: (the path up to its last key, the number of array
# steps after that key). ``extra[].birth_country`` -> (("extra", ARRAY, "birth_country"), 0);
# ``nationalities[]`` -> (("nationalities",), 1): the key whose array held the values.
Target = tuple[KeyPath, int]


def removal(path: KeyPath) -> Target | None:
    """The key a purge removes for ``path``, or None when no key names it (the values lie
    in arrays at the top of the column's value: the whole value is the data)."""
    trailing = 0
    while trailing < len(path) and path[len(path) - 1 - trailing] is Step.ARRAY:
        trailing += 1
    prefix = path[: len(path) - trailing]
    return (prefix, trailing) if prefix else None


def _matches(seg: str | Step, key: str) -> bool:
    if seg is Step.ANY:
        return True
    if seg is Step.DATA:
        return segment(key) is Step.DATA
    return key == seg


def _fits(value: Any, trailing: int) -> bool:
    """The member's value is what the path named: a scalar (not null) for a path ending in
    a key, an array for one ending in ``[]``."""
    if trailing:
        return isinstance(value, list) and not isinstance(value, Obj)
    return value is not None and not isinstance(value, list)


def _remove(node: Any, steps: KeyPath, trailing: int, out: list[Any]) -> None:
    seg, rest = steps[0], steps[1:]
    if seg is Step.ARRAY:
        if isinstance(node, list) and not isinstance(node, Obj):
            for item in node:
                _remove(item, rest, trailing, out)
        return
    if not isinstance(node, Obj):
        return
    if rest:
        for key, value in node:
            if _matches(seg, key):
                _remove(value, rest, trailing, out)
        return
    kept = []
    for key, value in node:
        if _matches(seg, key) and _fits(value, trailing):
            out.append(value)
        else:
            kept.append((key, value))
    node[:] = kept


def strip(text: str, targets: Sequence[Target]) -> tuple[str | None, list[list[str]]] | None:
    """``text`` without the members ``targets`` name, and the removed values per target (as
    :func:`text_of` gives them): ``(None, …)`` when nothing was removed; None when ``text``
    is not JSON that :func:`parse` reads (then it is left as it is)."""
    value = parse(text)
    if value is None:
        return None
    removed: list[list[str]] = []
    for steps, trailing in targets:
        got: list[Any] = []
        _remove(value, steps, trailing, got)
        removed.append([text_of(v) for v in got])
    return (dumps(value) if any(removed) else None), removed
