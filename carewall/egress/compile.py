"""The plan compiled to ONE query, as a sqlglot expression tree rendered per dialect.

The query has two levels. The inner one reads the source: each output column cast to text
(``_cw_0``, ``_cw_1``, … in output order), the row's group code (``_cw_group``, see
:func:`~carewall.egress.plan.group_code`) computed from the flag columns, and optionally
an ordering key (``_cw_order``). The outer one writes, for each output column,
``CASE WHEN (mask >> _cw_group) & 1 = 1 THEN _cw_i END`` (bit ``c`` of ``mask`` set for
each group ``c`` that may receive it; a plain ``_cw_i`` when every receiving group may),
keeps only rows whose group receives anything (the same test), and orders by
``_cw_order`` when there is one. Flag columns, the subject reference and unmapped columns
are never selected by the outer level.

Every identifier is quoted by sqlglot for the dialect (``"…"`` with ``""`` for DuckDB and
PostgreSQL, backticks for Spark), and every literal is a sqlglot literal: no source or
mapping name is ever pasted into SQL text. Only the source's own names reach the inner
level; the outer level refers to carewall's aliases only, so no source name can collide.

Values are text on every engine (``CAST(x AS TEXT)``, ``STRING`` in Spark): the same
mapping gives the same values whether the rows come from CSV, Parquet, SQLite or
PostgreSQL. Flags are read with ``CASE LOWER(TRIM(CAST(x AS TEXT), ' ')) WHEN 'yes' THEN …``
(the trim character named: ASCII spaces only, on every engine, where a bare ``TRIM`` on
DuckDB also strips Unicode spaces), compared with ASCII words only, so Unicode-aware and
ASCII lowercasing agree. DuckDB runs the same comparison written as a
list lookup (``lists``, :func:`list_position`), which it evaluates once per distinct value of
a Parquet column rather than once per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

from sqlglot import exp

from carewall.egress.mapping import FALSE_WORDS, TRUE_WORDS, EgressMapping, FactSource
from carewall.egress.plan import WEIGHTS, EgressPlan

__all__ = [
    "DIALECTS",
    "GROUP",
    "ORDER",
    "Dialect",
    "count_query",
    "fact_code",
    "fact_share",
    "file_table",
    "group_expression",
    "list_position",
    "named_table",
    "render",
    "select_query",
    "subjects_query",
    "sum_codes",
]

Dialect = Literal["duckdb", "postgres", "spark"]
DIALECTS: Final[tuple[Dialect, ...]] = ("duckdb", "postgres", "spark")
GROUP: Final = "_cw_group"
ORDER: Final = "_cw_order"


def _ident(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _text(e: exp.Expression) -> exp.Cast:
    return exp.Cast(this=e, to=exp.DataType.build("text"))


def _trim_spaces(e: exp.Expression) -> exp.Expression:
    """``e`` with ASCII spaces (U+0020) trimmed from both ends, and nothing else: ``TRIM(e,
    ' ')`` on DuckDB, ``TRIM(' ' FROM e)`` on PostgreSQL and Spark. A bare ``TRIM(e)`` on
    DuckDB also strips Unicode spaces (NBSP, U+2000..U+200A, U+202F, U+205F, U+3000,
    U+1680), which :func:`carewall.egress.flags.decode_flag` does not: a flag padded with
    them must fail closed on every engine and in the decoder alike."""
    return exp.Trim(this=e, expression=exp.Literal.string(" "))


def fact_share(fact: str, position: exp.Expression) -> exp.Expression:
    """The fact's share of the group code from ``position``, where the value stands among
    the words that make the fact non-protective (:data:`TRUE_WORDS` for consent,
    :data:`FALSE_WORDS` otherwise), NULL when it is not one of them:
    ``CASE WHEN position IS NULL THEN <protective share> ELSE <other share> END``."""
    weight = WEIGHTS[fact]
    listed, absent = (weight, 0) if fact == "consent" else (0, weight)
    missing = exp.Is(this=position, expression=exp.Null())
    return exp.Case().when(missing, exp.Literal.number(absent)).else_(exp.Literal.number(listed))


def list_position(values: Sequence[exp.Expression], value: exp.Expression) -> exp.Expression:
    """``LIST_POSITION([v1, v2, …], value)`` (DuckDB only): where ``value`` stands among
    ``values`` (none of them NULL), NULL when it equals none of them, as exactly as
    ``CASE value WHEN v1 …`` compares. One function of one column, which DuckDB evaluates
    once per distinct value of a dictionary-encoded vector (a Parquet column chunk's)
    instead of once per row. Not ``IN (…)``: see :func:`_member`."""
    items = exp.Array(expressions=list(values))
    return exp.Anonymous(this="LIST_POSITION", expressions=[items, value])


def fact_code(fact: str, source: FactSource, *, lists: bool = False) -> exp.Expression:
    """The fact's share of the group code: its weight when true, 0 when false.

    A stated boolean is a constant; a flag column is read fail-closed (NULL or an
    unrecognised value makes a child, a victim or witness, and no consent). The value is
    ``LOWER(TRIM(CAST(x AS TEXT), ' '))`` compared with the words; ``lists`` (DuckDB only) writes
    the comparison as a :func:`list_position` lookup instead of ``CASE v WHEN 'w' THEN …``:
    the same answer for every value, held equal by a property test.
    """
    weight = WEIGHTS[fact]
    if isinstance(source, bool):
        return exp.Literal.number(weight if source else 0)
    value = exp.Lower(this=_trim_spaces(_text(_ident(source))))
    words = [exp.Literal.string(w) for w in (TRUE_WORDS if fact == "consent" else FALSE_WORDS)]
    if lists:
        return fact_share(fact, list_position(words, value))
    then, other = (weight, 0) if fact == "consent" else (0, weight)
    case = exp.Case(this=value)  # CASE v WHEN 'w' THEN …: see _member for why not IN
    for w in words:
        case = case.when(w, exp.Literal.number(then))
    return case.else_(exp.Literal.number(other))


def sum_codes(parts: Sequence[exp.Expression]) -> exp.Expression:
    """``(a + b + c)``: the facts' shares added up to the group code."""
    total = parts[0]
    for p in parts[1:]:
        total = exp.Add(this=total, expression=p)
    return exp.paren(total, copy=False)


def group_expression(mapping: EgressMapping, *, lists: bool = False) -> exp.Expression:
    """The row's group code, 0..7, as one integer expression (``lists``: see
    :func:`fact_code`)."""
    return sum_codes([fact_code(f, s, lists=lists) for f, s in mapping.facts])


def file_table(function: str, path: str, **options: exp.Expression) -> exp.Expression:
    """A table function over a file, e.g. ``read_parquet('path')``, with named options."""
    args: list[exp.Expression] = [exp.Literal.string(path)]
    args += [exp.EQ(this=exp.var(k), expression=v) for k, v in options.items()]
    return exp.Table(this=exp.Anonymous(this=function, expressions=args))


def named_table(name: str, schema: str | None = None) -> exp.Table:
    """A (schema-qualified) table or view, quoted."""
    return exp.table_(name, db=schema, quoted=True)


def _inner(
    mapping: EgressMapping,
    columns: tuple[str, ...],
    source: exp.Expression,
    order: exp.Expression | None,
    typed: bool = False,
    group: exp.Expression | None = None,
) -> exp.Select:
    items: list[exp.Expr] = [
        exp.alias_(_ident(c) if typed else _text(_ident(c)), f"_cw_{i}", quoted=True)
        for i, c in enumerate(columns)
    ]
    code = group_expression(mapping) if group is None else group.copy()
    items.append(exp.alias_(code, GROUP, quoted=True))
    if order is not None:
        items.append(exp.alias_(order, ORDER, quoted=True))
    return exp.select(*items).from_(source.copy())


def _member(codes: tuple[int, ...]) -> exp.Expr:
    """Whether ``_cw_group`` is one of ``codes``: ``(mask >> _cw_group) & 1 = 1``, where bit
    ``c`` of ``mask`` is set for each code ``c`` (always one of 0..7). One test per row
    whatever the codes, where ``_cw_group = a OR _cw_group = b …`` made up to four and DuckDB
    copies the group's whole expression into each of them when it pushes the WHERE down.
    Not ``IN (…)``: DuckDB (2.0) plans an IN list of five or more values as a parallel MARK
    join, which loses the source's row order."""
    if set(codes) >= set(range(8)):
        return exp.true()
    mask = sum(1 << c for c in set(codes))
    shifted = exp.BitwiseRightShift(this=exp.Literal.number(mask), expression=_ident(GROUP))
    bit = exp.BitwiseAnd(this=exp.paren(shifted, copy=False), expression=exp.Literal.number(1))
    return exp.paren(bit, copy=False).eq(exp.Literal.number(1))


def select_query(
    plan: EgressPlan,
    source: exp.Expression,
    *,
    order: exp.Expression | None = None,
    typed: bool = False,
    group: exp.Expression | None = None,
) -> exp.Select:
    """The filter: only permitted columns, only rows of receiving groups.

    ``source`` is a FROM-able expression (:func:`file_table`, :func:`named_table`);
    ``order`` an expression over the source giving the row order (e.g. ``ctid``), or None
    for the order the engine reads the source in. ``typed`` keeps each column's own type
    (a Parquet source written to Parquet, where every engine reads the same types) instead
    of casting every value to text. ``group`` replaces the group code's SQL form (see
    :mod:`carewall.egress.flags`). Raises ValueError for an empty plan (nothing may go:
    there is no query to run).
    """
    if plan.empty:
        raise ValueError("an empty plan has no query: nothing may be disclosed")
    columns = plan.output_columns
    receiving = plan.receiving
    items: list[exp.Expr] = []
    for i, c in enumerate(columns):
        value: exp.Expression = _ident(f"_cw_{i}")
        allowed = plan.groups_for(c)
        if set(allowed) != set(receiving):
            value = exp.Case().when(_member(allowed), value)
        items.append(exp.alias_(value, c, quoted=True))
    query = (
        exp.select(*items)
        .from_(
            _inner(plan.mapping, columns, source, order, typed, group).subquery(
                "_cw_source", copy=False
            )
        )
        .where(_member(receiving))
    )
    if order is not None:
        query = query.order_by(_ident(ORDER))
    return query


def subjects_query(
    mapping: EgressMapping, source: exp.Expression, *, group: exp.Expression | None = None
) -> exp.Select:
    """``SELECT <subject_ref as text>, <group code>``: each row's person and group, in the
    order the engine reads the source (``group``: as in :func:`select_query`)."""
    code = group_expression(mapping) if group is None else group.copy()
    return exp.select(_text(_ident(mapping.subject_ref)), code).from_(source.copy())


def count_query(
    mapping: EgressMapping, source: exp.Expression, *, group: exp.Expression | None = None
) -> exp.Select:
    """``SELECT _cw_group, COUNT(*) … GROUP BY _cw_group``: rows per group, one pass
    (``group``: as in :func:`select_query`)."""
    code = group_expression(mapping) if group is None else group.copy()
    inner = exp.select(exp.alias_(code, GROUP, quoted=True)).from_(source.copy())
    return (
        exp.select(_ident(GROUP), exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True))
        .from_(inner.subquery("_cw_source", copy=False))
        .group_by(_ident(GROUP))
    )


def render(query: exp.Expression, dialect: Dialect) -> str:
    """The query as SQL text for ``dialect`` (``duckdb``, ``postgres`` or ``spark``)."""
    return query.sql(dialect=dialect)
