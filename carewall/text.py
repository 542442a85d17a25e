"""Free text that every database can store: the one check at every boundary.

PostgreSQL's ``text`` cannot hold a NUL character, and no UTF-8 database can hold a lone
surrogate (half of a UTF-16 pair, which Python strings can carry after JSON ``"\\ud800"`` or
an undecodable command-line byte). SQLite would store either, so without this check the two
backends would accept different documents; with it, both refuse them with the same
field-named error (HTTP 422, CLI exit 2) before anything is written.

Three kinds of text, by what a field may legitimately hold:

- ``line``: one line that names or identifies (a subject's reference, the request's
  reference, people's names, roles and contacts): no control characters at all (C0, DEL
  or C1), so no tab, line break or NUL;
- ``prose``: what people type into carewall (a review note, appeal grounds) and a postal
  address: tabs and line breaks (``\\t``, ``\\n``, ``\\r``) are allowed, other control
  characters are not;
- ``verbatim``: text kept exactly as a requester or operator wrote it (the necessity
  statement, a court order's reference and court, policy text): anything a database can
  store, so only NUL and lone surrogates are refused; wherever it is shown or exported,
  control characters are made inert there.

Errors name the field and the fix and never repeat the text (it may be personal data).
"""

from __future__ import annotations

import re
from typing import Final, Literal

from carewall.errors import InputError

__all__ = ["TextKind", "check_text", "text_problem"]

TextKind = Literal["line", "prose", "verbatim"]

_NUL: Final = "\x00"
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_BAD: Final[dict[TextKind, re.Pattern[str]]] = {
    "line": re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]"),
    "prose": re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]"),
    "verbatim": re.compile("[\x00\ud800-\udfff]"),
}
_CONTROL_FIX: Final[dict[TextKind, str]] = {
    "line": "write it on one line, without tabs, line breaks or other control characters",
    "prose": "remove control characters (tabs and line breaks are fine)",
    "verbatim": "remove the character",
}


def text_problem(value: str, kind: TextKind = "line") -> tuple[str, str] | None:
    """(message, fix) when ``value`` may not be stored as a ``kind`` text, else None."""
    found = _BAD[kind].search(value)
    if found is None:
        return None
    char = found.group()
    if char == _NUL:
        return (
            "contains a NUL character (\\u0000), which cannot be stored",
            "remove the NUL character",
        )
    if _SURROGATE.fullmatch(char):
        return (
            "contains a lone surrogate (half of a UTF-16 pair), which is not a character",
            "send the text as valid UTF-8 (a surrogate pair must be complete)",
        )
    return (f"contains a control character (U+{ord(char):04X})", _CONTROL_FIX[kind])


def check_text(
    value: object,
    *,
    field: str,
    kind: TextKind = "line",
    max_length: int | None = None,
) -> str:
    """``value`` if it is a string every database can store as ``kind``; else InputError."""
    if not isinstance(value, str):
        raise InputError("must be a string", field=field, fix="give text")
    if max_length is not None and len(value) > max_length:
        raise InputError(
            f"is longer than {max_length} characters",
            field=field,
            fix=f"shorten it to at most {max_length} characters",
        )
    problem = text_problem(value, kind)
    if problem is not None:
        raise InputError(problem[0], field=field, fix=problem[1])
    return value
