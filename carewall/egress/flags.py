"""Flags decoded once per distinct value instead of once per row (DuckDB's fast path).

A flag column holds a handful of distinct values (``Y``, `` yes``, ``0``, NULL…). One
``GROUP BY`` over the raw flag columns counts each combination; each distinct value is
then decoded here, by exactly the rule the SQL form applies (:func:`fact_code`: the text
form, spaces trimmed, ASCII-lowercased, compared with the word lists), and the filter
compares raw values: ``CASE "under_18" WHEN 'N' THEN 0 WHEN ' No' THEN 0 … ELSE 4 END``.
Only values that decode to the non-protective answer are listed, so any value not seen in
the count pass (the source changed meanwhile) still fails closed. Values of other types
(dates, floats…) are left to the SQL form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlglot import exp

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
        weight = WEIGHTS[fact]
        if isinstance(source, bool):
            parts.append(exp.Literal.number(weight if source else 0))
            continue
        closed = fail_closed(fact)
        other: list[Any] = []
        for v in values.get(source, ()):
            decoded = decode_flag(fact, v)
            if decoded is None:
                return None
            if v is not None and decoded != closed:
                other.append(v)
        col = exp.column(source, quoted=True)
        protective = exp.Literal.number(weight if closed else 0)
        if not other:
            parts.append(protective)
            continue
        case = exp.Case(this=col)
        for v in other:
            case = case.when(_literal(v), exp.Literal.number(0 if closed else weight))
        parts.append(case.else_(protective))
    total = parts[0]
    for p in parts[1:]:
        total = exp.Add(this=total, expression=p)
    return exp.paren(total, copy=False)
