"""Flags decoded once per distinct value instead of once per row (DuckDB, plain rows).

CSV and database rows reach DuckDB as plain values, where lowercasing and trimming every
row's flag would cost more than the rest of the filter. A flag column holds a handful of
distinct values (``Y``, `` yes``, ``0``, NULL…): one ``GROUP BY`` over the raw flag
columns counts each combination; each distinct value is then decoded here, by exactly the
rule the SQL form applies (:func:`fact_code`: the text form, spaces trimmed,
ASCII-lowercased, compared with the word lists), and the filter looks raw values up:
``CASE WHEN LIST_POSITION(['0', 'N', ' No', …], "under_18") IS NULL THEN 4 ELSE 0 END``.
Only values that decode to the non-protective answer are listed, so any value not seen in
the count pass (the source changed meanwhile) still fails closed. Values of other types
(dates, floats…) are left to the SQL form. (A Parquet source needs none of this: DuckDB
evaluates the SQL form's lookup once per entry of a column chunk's dictionary; see
:func:`carewall.egress.engines._duck_counts`.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlglot import exp

from carewall.egress.compile import fact_code, fact_share, list_position, sum_codes
from carewall.egress.mapping import FALSE_WORDS, TRUE_WORDS, EgressMapping, fail_closed
from carewall.egress.plan import WEIGHTS

__all__ = ["decode_flag", "raw_group_expression"]


def decode_flag(fact: str, value: Any) -> bool | None:
    """The fact a raw flag value states (None: a type this fast path does not decode)."""
    if value is None:
        return fail_closed(fact)
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        return None
    text = text.strip(" ")
    if not text.isascii():
        return fail_closed(fact)  # no ASCII word: lowercasing cannot make one
    text = text.lower()
    return text in TRUE_WORDS if fact == "consent" else text not in FALSE_WORDS


def _literal(value: Any) -> exp.Expression:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def raw_group_expression(
    mapping: EgressMapping, values: Mapping[str, Iterable[Any]]
) -> exp.Expression | None:
    """The group code from raw flag values seen in ``values`` (column -> distinct values),
    or None when some value is of a type only the SQL form decodes."""
    parts: list[exp.Expression] = []
    for fact, source in mapping.facts:
        if isinstance(source, bool):
            parts.append(fact_code(fact, source))
            continue
        closed = fail_closed(fact)
        other: list[Any] = []
        for v in values.get(source, ()):
            decoded = decode_flag(fact, v)
            if decoded is None:
                return None
            if v is not None and decoded != closed:
                other.append(v)
        if not other:
            parts.append(exp.Literal.number(WEIGHTS[fact] if closed else 0))
            continue
        other.sort(key=repr)  # the same SQL text from one run to the next
        col = exp.column(source, quoted=True)
        parts.append(fact_share(fact, list_position([_literal(v) for v in other], col)))
    return sum_codes(parts)
