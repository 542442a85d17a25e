"""Flags decoded per distinct value (DuckDB's fast path) and the list form DuckDB runs agree
with the SQL form (``CASE LOWER(TRIM(…)) WHEN …``, the form PostgreSQL and Spark run) per
row, on plain vectors and on dictionary-encoded Parquet columns (DuckDB evaluates a
function of one column once per dictionary entry: a different path)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from carewall.egress.compile import fact_code, group_expression, render
from carewall.egress.flags import decode_flag, raw_group_expression
from carewall.egress.mapping import fail_closed, load_mapping
from carewall.egress.plan import WEIGHTS

WORDS = ["true", "t", "1", "y", "yes", "false", "f", "0", "n", "no"]
# Spaces other than U+0020 (DuckDB's bare TRIM strips these; the flag rule does not): NBSP,
# U+1680, U+2000..U+200A, U+202F, U+205F, U+3000, and U+0085 / U+2028 for good measure.
UNICODE_SPACES = "\u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
UNICODE_SPACES += "\u0085\u2028"
texts = st.one_of(
    st.sampled_from(WORDS).map(lambda w: w.upper() if len(w) > 2 else w),
    st.builds(
        lambda w, a, b: a + w + b,
        st.sampled_from(WORDS),
        st.sampled_from(["", " ", "  ", "\t"]),
        st.sampled_from(["", " ", "\n"]),
    ),
    st.text(alphabet="yesnoYESNO01tfTF İKﬀ\u212a" + UNICODE_SPACES, max_size=4),
    st.builds(
        lambda w, a, b: a + w + b,
        st.sampled_from(WORDS),
        st.text(alphabet=" " + UNICODE_SPACES, max_size=2),
        st.text(alphabet=" " + UNICODE_SPACES, max_size=2),
    ),
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


# ----- the list form (LIST_POSITION over the dictionary) -----------------------------------

SQL_TYPES = {"VARCHAR": pa.string(), "INTEGER": pa.int32(), "BIGINT": pa.int64(),
             "BOOLEAN": pa.bool_(), "DOUBLE": pa.float64()}  # fmt: skip


def both_forms(fact: str, values: list[Any], sql_type: str) -> tuple[list[int], list[int]]:
    """Each value's share of the group code by the CASE form and by the list form, over a
    table (plain vectors) and a Parquet file (dictionary-encoded), every row in order."""
    case = render(fact_code(fact, "v"), "duckdb")
    lists = render(fact_code(fact, "v", lists=True), "duckdb")
    table = pa.table({"i": pa.array(range(len(values)), pa.int32()),
                      "v": pa.array(values, SQL_TYPES[sql_type])})  # fmt: skip
    con = duckdb.connect()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "flags.parquet"
            # small pages and row groups: many dictionaries, each over a few rows
            pq.write_table(table, path, use_dictionary=True, row_group_size=7,
                           data_page_size=64)  # fmt: skip
            src = "read_parquet(" + exp.Literal.string(str(path)).sql("duckdb") + ")"
            con.register("plain", table)
            got = {}
            for name, frm in (("plain", "plain"), ("parquet", src)):
                q = f"SELECT {case}, {lists} FROM {frm} ORDER BY i"
                got[name] = con.execute(q).fetchall()
    finally:
        con.close()
    assert got["plain"] == got["parquet"]
    return [a for a, _ in got["parquet"]], [b for _, b in got["parquet"]]


@settings(deadline=None, max_examples=60)
@given(st.sampled_from(FACTS), st.lists(st.one_of(st.none(), texts), min_size=1, max_size=40))
def test_list_form_is_the_sql_form_on_text(fact: str, values: list[str | None]) -> None:
    case, lists = both_forms(fact, values, "VARCHAR")
    assert lists == case
    assert [bool(c) for c in case] == [bool(decode_flag(fact, v)) for v in values]


@settings(deadline=None, max_examples=30)
@given(
    st.sampled_from(FACTS),
    st.sampled_from(["INTEGER", "BIGINT", "BOOLEAN", "DOUBLE"]),
    st.lists(st.one_of(st.none(), st.integers(-3, 3)), min_size=1, max_size=40),
)
def test_list_form_is_the_sql_form_on_other_types(
    fact: str, sql_type: str, ints: list[int | None]
) -> None:
    values: list[Any] = ints
    if sql_type == "BOOLEAN":
        values = [None if v is None else v > 0 for v in ints]
    elif sql_type == "DOUBLE":
        values = [None if v is None else v / 2 for v in ints]
    case, lists = both_forms(fact, values, sql_type)
    assert lists == case


def test_raw_values_in_a_dictionary_encoded_parquet_column() -> None:
    """The raw-value form over Parquet, where DuckDB decodes each dictionary entry once."""
    mapping = load_mapping(
        'subject_ref = "id"\n[columns]\nname = "name"\n'
        '[facts]\nis_child = "c"\nis_victim_or_witness = "v"\nconsent = "k"\n'
    )
    c = ["N", " no", "Y", None, "n", "?", "0"] * 50
    v = ["no", "F", "yes", "f", None, "2", "F "] * 50
    k = ["yes", " TRUE ", "no", "1", None, "t", "Yes"] * 50
    table = pa.table({"id": [str(i) for i in range(len(c))], "c": c, "v": v, "k": k})
    seen = {"c": set(c[:5]), "v": set(v[:5]), "k": set(k[:5])}  # rows 6, 7 hold unseen values
    group = raw_group_expression(mapping, seen)
    assert group is not None
    con = duckdb.connect()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "f.parquet"
            pq.write_table(table, path, use_dictionary=True, row_group_size=100)
            src = "read_parquet(" + exp.Literal.string(str(path)).sql("duckdb") + ")"
            fast = render(group, "duckdb")
            full = render(group_expression(mapping), "duckdb")
            rows = con.execute(f"SELECT {fast}, {full}, c, v, k FROM {src}").fetchall()
    finally:
        con.close()
    for fast_code, full_code, *raw in rows:
        if raw[0] in seen["c"] and raw[1] in seen["v"] and raw[2] in seen["k"]:
            assert fast_code == full_code
        else:  # a value not seen in the count pass: the protective reading for that fact
            protective = full_code
            for (fact, col), value in zip(mapping.facts, raw, strict=True):
                if value not in seen[str(col)]:
                    w = WEIGHTS[fact]
                    protective = protective & ~w if fact == "consent" else protective | w
            assert fast_code == protective


def test_unicode_spaces_are_not_trimmed_by_any_engine() -> None:
    """Only U+0020 is trimmed: a flag padded with any other space fails closed, in the
    decoder and in the SQL form (DuckDB's bare TRIM would strip NBSP and the like)."""
    values = [sp + w + sp for sp in UNICODE_SPACES for w in ("no", "yes", "false", "true")]
    for fact in FACTS:
        closed = [fail_closed(fact)] * len(values)
        assert [decode_flag(fact, v) for v in values] == closed
        assert sql_decode(fact, values, "VARCHAR") == closed
    assert "TRIM(CAST(\"v\" AS TEXT), ' ')" in render(fact_code("consent", "v"), "duckdb")
    assert "TRIM(' ' FROM CAST(\"v\" AS TEXT))" in render(fact_code("consent", "v"), "postgres")
    assert "TRIM(' ' FROM CAST(`v` AS STRING))" in render(fact_code("consent", "v"), "spark")
