"""Flags decoded per distinct value (DuckDB's fast path) agree with the SQL form per row."""

from __future__ import annotations

from typing import Any

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from carewall.egress.compile import fact_code, render
from carewall.egress.flags import decode_flag, raw_group_expression
from carewall.egress.mapping import load_mapping

WORDS = ["true", "t", "1", "y", "yes", "false", "f", "0", "n", "no"]
texts = st.one_of(
    st.sampled_from(WORDS).map(lambda w: w.upper() if len(w) > 2 else w),
    st.builds(
        lambda w, a, b: a + w + b,
        st.sampled_from(WORDS),
        st.sampled_from(["", " ", "  ", "\t"]),
        st.sampled_from(["", " ", "\n"]),
    ),
    st.text(alphabet="yesnoYESNO01tfTF İKﬀ\u212a", max_size=4),
)
FACTS = ["is_child", "is_victim_or_witness", "consent"]


def sql_decode(fact: str, values: list[Any], sql_type: str) -> list[bool]:
    """What the SQL form (fact_code) says of each value, run in DuckDB."""
    con = duckdb.connect()
    try:
        con.execute(f"CREATE TABLE t (i INTEGER, v {sql_type})")
        con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
        code = render(fact_code(fact, "v"), "duckdb")
        rows = con.execute(f"SELECT i, {code} FROM t ORDER BY i").fetchall()
    finally:
        con.close()
    return [bool(c) for _, c in rows]


@settings(deadline=None, max_examples=60)
@given(st.sampled_from(FACTS), st.lists(st.one_of(st.none(), texts), min_size=1, max_size=12))
def test_text_values_decode_as_the_sql_form_does(fact: str, values: list[str | None]) -> None:
    assert [decode_flag(fact, v) for v in values] == sql_decode(fact, values, "VARCHAR")


@settings(deadline=None, max_examples=30)
@given(st.sampled_from(FACTS), st.lists(st.one_of(st.none(), st.integers(-3, 3)), min_size=1))
def test_integer_values_decode_as_the_sql_form_does(fact: str, values: list[int | None]) -> None:
    assert [decode_flag(fact, v) for v in values] == sql_decode(fact, values, "INTEGER")


def test_boolean_values_and_unknown_types() -> None:
    for fact in FACTS:
        assert [decode_flag(fact, v) for v in (True, False, None)] == sql_decode(
            fact, [True, False, None], "BOOLEAN"
        )
    assert decode_flag("consent", 1.0) is None  # left to the SQL form


def test_a_value_not_seen_in_the_count_pass_fails_closed() -> None:
    mapping = load_mapping(
        'subject_ref = "id"\n[columns]\nname = "name"\n'
        '[facts]\nis_child = "c"\nis_victim_or_witness = "v"\nconsent = "k"\n'
    )
    group = raw_group_expression(mapping, {"c": ["N"], "v": ["no"], "k": ["yes"]})
    assert group is not None
    con = duckdb.connect()
    try:
        q = exp.select(group).from_("t")
        con.execute("CREATE TABLE t AS SELECT 'N' AS c, 'no' AS v, 'yes' AS k UNION ALL "
                    "SELECT 'false', 'nope', 'YES'")  # fmt: skip
        got = [r[0] for r in con.execute(render(q, "duckdb")).fetchall()]
    finally:
        con.close()
    # seen: not a child, not a victim, consenting = 1; unseen spellings: the protective
    # reading (a child, a victim or witness, no consent) = 4 + 2 + 0
    assert got == [1, 6]
