"""The compiled query: one sqlglot tree, three dialects, quoted identifiers, fail-closed flags."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot
from egress_helpers import decide, refuse_all

from carewall.egress.compile import DIALECTS, count_query, named_table, render, select_query
from carewall.egress.mapping import load_mapping
from carewall.egress.plan import EgressPlan, build_plan

HOSTILE = 'a"; DROP TABLE x; --'
TICK = "b`); DROP TABLE x; --"
MAPPING = f"""
subject_ref = "ref"
[columns]
'{HOSTILE}' = "name"
"{TICK}" = "address"
attendance = "attendance"
nationality = "nationality"
[facts]
is_child = "under_18"
is_victim_or_witness = "victim"
consent = "consent"
"""
CATS = ["name", "address", "attendance", "nationality"]


def _plan() -> EgressPlan:
    return build_plan(load_mapping(MAPPING), CATS, decide)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_renders_and_parses_back(dialect: str) -> None:
    sql = render(select_query(_plan(), named_table("src")), dialect)  # type: ignore[arg-type]
    tree = sqlglot.parse_one(sql, read=dialect)
    assert isinstance(tree, sqlglot.exp.Select)
    assert [s.alias_or_name for s in tree.selects] == [HOSTILE, TICK, "attendance"]
    assert "nationality" not in sql and "DROP TABLE x; --" in sql  # only inside quotes
    assert len(sqlglot.parse(sql, read=dialect)) == 1  # one statement, nothing injected


def test_hostile_identifiers_run_safely_in_duckdb() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE x (k INTEGER)")
    cols = [HOSTILE, TICK, "attendance", "nationality", "ref", "under_18", "victim", "consent"]
    ddl = ", ".join('"' + c.replace('"', '""') + '" VARCHAR' for c in cols)
    con.execute(f"CREATE TABLE src ({ddl})")
    con.execute(
        "INSERT INTO src VALUES ('n1', 'a1', '90', 'X', 'r1', 'no', 'no', 'no'), "
        "('n2', 'a2', '80', 'Y', 'r2', 'yes', 'no', NULL), "
        "('n3', 'a3', '70', 'Z', 'r3', 'no', 'yes', 'no')"
    )
    rel = con.sql(render(select_query(_plan(), named_table("src")), "duckdb"))
    assert rel.columns == [HOSTILE, TICK, "attendance"]
    assert rel.fetchall() == [("n1", "a1", None), ("n2", "a2", "80")]
    assert con.execute("SELECT count(*) FROM x").fetchall() == [(0,)]


FLAGS = [
    # value, as child, as consent
    ("yes", True, True), (" Y ", True, True), ("TRUE", True, True), ("1", True, True),
    ("t", True, True), ("no", False, False), (" N", False, False), ("False", False, False),
    ("0", False, False), ("f", False, False), (None, True, False), ("", True, False),
    ("maybe", True, False), ("2", True, False), ("\tno", True, False), ("nö", True, False),
]  # fmt: skip


def test_flags_read_fail_closed() -> None:
    text = MAPPING.replace('consent = "consent"', 'consent = "under_18"').replace(
        'is_child = "under_18"', 'is_child = "victim"'
    )
    text = text.replace('is_victim_or_witness = "victim"', "is_victim_or_witness = false")
    mapping = load_mapping(text)
    con = duckdb.connect()
    con.execute("CREATE TABLE src (ref VARCHAR, victim VARCHAR, under_18 VARCHAR)")
    con.executemany(
        "INSERT INTO src VALUES (?, ?, ?)", [(str(i), v, v) for i, (v, _, _) in enumerate(FLAGS)]
    )
    # one row per flag value: its group code is 4·child + consent
    for i, (value, child, consent) in enumerate(FLAGS):
        con.execute(f"CREATE VIEW v{i} AS SELECT * FROM src WHERE ref = '{i}'")
        got = con.execute(count_query(mapping, named_table(f"v{i}")).sql("duckdb")).fetchall()
        assert got == [(4 * child + consent, 1)], value


def test_stated_facts_are_constants() -> None:
    text = MAPPING.replace('is_child = "under_18"', "is_child = false")
    sql = render(count_query(load_mapping(text), named_table("src")), "postgres")
    assert "under_18" not in sql


def test_empty_plan_has_no_query() -> None:
    with pytest.raises(ValueError):
        select_query(build_plan(load_mapping(MAPPING), CATS, refuse_all), named_table("src"))


def test_no_in_lists() -> None:
    # DuckDB plans IN lists of 5+ values as MARK joins that lose row order
    sql = render(select_query(_plan(), named_table("src")), "duckdb")
    assert " IN (" not in sql


def test_group_membership_is_a_bitmask_test() -> None:
    """``_member(codes)`` is true exactly for the codes listed, for every subset of 0..7, and
    renders to one expression in every dialect."""
    from carewall.egress.compile import GROUP, _member

    con = duckdb.connect()
    try:
        for subset in range(1, 256):
            codes = tuple(c for c in range(8) if subset >> c & 1)
            for dialect in DIALECTS:
                sql = render(_member(codes), dialect)
                assert isinstance(sqlglot.parse_one(sql, read=dialect), sqlglot.exp.Expression)
                assert " IN (" not in sql and " OR " not in sql
            test = render(_member(codes), "duckdb")
            q = f'SELECT "{GROUP}" FROM range(8) AS t("{GROUP}") WHERE {test} ORDER BY 1'
            assert [r[0] for r in con.execute(q).fetchall()] == list(codes)
    finally:
        con.close()
