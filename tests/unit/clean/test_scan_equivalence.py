"""The scanner's counts, pinned to a reference computed another way: plain Python over the
same small table, written as Parquet, CSV (in a folder, beside a file with no candidate
column) and SQLite, with and without a date range. Values mix NULLs, blanks, case, padding,
numbers and dates, so every ColumnResult field (rows, values, matched, distinct, flagged)
is checked against what ``upper(trim(CAST(value AS VARCHAR)))`` must give."""

from __future__ import annotations

import csv
import sqlite3
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from hypothesis import example, given, settings
from hypothesis import strategies as st

from carewall.clean import open_source, scan
from carewall.clean.rules import BLANKS, RuleSet, default_rules, normalise_value
from carewall.clean.scanner import _recogniser_table
from carewall.clean.sources import DateRange, duck

# Column name -> Arrow type. Nationality, COB, ResidenceStatus, nat_cd and BirthCountry are
# candidates of the shipped rules; HousingStatus and CollectedOn are not.
SCHEMA = pa.schema(
    [
        ("Nationality", pa.string()),
        ("COB", pa.string()),
        ("ResidenceStatus", pa.string()),
        ("nat_cd", pa.int64()),  # numbers: ISO 3166 numeric codes such as 826 are recognised
        ("BirthCountry", pa.date32()),  # a date under a candidate's name
        ("HousingStatus", pa.string()),
        ("CollectedOn", pa.string()),  # ISO dates as text, as the synthetic census has them
    ]
)
NAMES = [f.name for f in SCHEMA]
OTHER = ["HousingStatus", "CollectedOn"]  # the file with no candidate column

BASE = ["GBR", "gb", "Poland", "Polish", "Not yet obtained", "ILR", "refugee", "WBRI",
        "Lagos", "ENG", "826", "x", "British citizen", ""]  # fmt: skip
DAY0 = date(2015, 1, 1)
# Spaces, and the blanks that are not spaces (a tab, a line break, a no-break space).
PADDING = ["", " ", "  ", "\t", "\n", "\xa0", " \t"]

days = st.integers(0, 5 * 365).map(lambda n: DAY0 + timedelta(days=n))
texts = st.one_of(
    st.none(),
    st.builds(
        lambda left, v, case, right: left + case(v) + right,
        st.sampled_from(PADDING),
        st.sampled_from(BASE),
        st.sampled_from([str.upper, str.lower, str.title, str]),
        st.sampled_from(PADDING),
    ),
    st.text(alphabet="aAgG 0", max_size=3),
)
rows_st = st.lists(
    st.tuples(
        texts,
        texts,
        texts,
        st.one_of(st.none(), st.sampled_from([826, 616, 1, 0, 999])),
        st.one_of(st.none(), days),
        texts,
        st.one_of(st.none(), days.map(date.isoformat)),
    ),
    max_size=30,
)
# Rows a random draw seldom holds together: one value in several cases and paddings, blanks
# beside NULLs, so that counting distinct values on anything but the exact text would show.
MIXED: list[Row] = [
    (v, v, v, n, DAY0 + timedelta(days=d), v, (DAY0 + timedelta(days=d)).isoformat())
    for d, (v, n) in enumerate(
        [("GBR", 826), ("gbr", 826), (" gbr ", 616), ("Gbr", None), ("", 0), (" ", 1),
         (None, None), ("Polish", 999), ("POLISH  ", 826), ("ilr", 1), ("ILR", 1),
         (" refugee", None), ("WBRI", 0), ("wbri", 0), ("", None), ("GBR", 826),
         ("GBR\t", 826), ("\xa0polish", 616), ("ilr\n", 1)]
    )
] + [(None, "Poland", " Refugee ", None, None, "x", None)]  # fmt: skip

ranges = st.one_of(st.none(), st.builds(lambda a, b: DateRange("CollectedOn", a, b), days, days))

Row = tuple[Any, ...]
Result = tuple[str, str, str, int, int, int, int, bool]


def _as_text(value: Any, kind: str) -> str | None:
    """What the source hands the scanner for ``value``: text, or None for NULL."""
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    # DuckDB's CSV reader reads an empty field, quoted or not, as NULL.
    return None if kind == "csv" and value == "" else str(value)


def _in_range(row: Row, where: DateRange | None) -> bool:
    if where is None:
        return True
    day = row[NAMES.index("CollectedOn")]
    return day is not None and where.start <= date.fromisoformat(day) <= where.end


def reference(
    table: str, names: list[str], rows: list[Row], kind: str, where: DateRange | None
) -> tuple[int, list[Result]]:
    """Rows in range and each (candidate column, rule)'s counts, in Python."""
    rules = default_rules()
    kept = [r for r in rows if _in_range(r, where)]
    out = []
    for column in names:
        i = NAMES.index(column)
        values = [v for r in kept if (v := _as_text(r[i], kind)) is not None]
        for rule in rules.candidates(column):
            known = frozenset().union(*(rules.recognisers[name] for name in rule.values))
            # Trimmed as Python's strip() trims (every blank, not only spaces); upper() of
            # these values is Python's.
            matched = sum(v.strip().upper() in known for v in values)
            out.append((table, column, rule.id, len(kept), len(values), matched,
                        len(set(values)), rule.holds(len(values), matched)))  # fmt: skip
    return len(kept), out


def _write(folder: Path, rows: list[Row]) -> tuple[Path, Path]:
    files = folder / "files"
    files.mkdir()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in NAMES]
    table = pa.table([pa.array(list(c), f.type) for c, f in zip(columns, SCHEMA, strict=True)],
                     schema=SCHEMA)  # fmt: skip
    pq.write_table(table, files / "census.parquet")
    pq.write_table(table.select(OTHER), files / "other.parquet")
    with (files / "census.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(NAMES)
        w.writerows([["" if v is None else str(v) for v in r] for r in rows])
    db = folder / "census.db"
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE census (Nationality TEXT, COB TEXT, ResidenceStatus TEXT, "
        "nat_cd INTEGER, BirthCountry TEXT, HousingStatus TEXT, CollectedOn TEXT)"
    )
    con.executemany(
        "INSERT INTO census VALUES (?, ?, ?, ?, ?, ?, ?)",
        [tuple(v.isoformat() if isinstance(v, date) else v for v in r) for r in rows],
    )
    con.commit()
    con.close()
    return files, db


def _scanned(spec: str, where: DateRange | None) -> tuple[int, list[Result]]:
    src = open_source(spec)
    try:
        report = scan(src, where=where)
    finally:
        src.close()
    got = [(c.table, c.column, c.rule, c.rows, c.values, c.matched, c.distinct, c.flagged)
           for c in report.columns]  # fmt: skip
    return report.rows, got


@settings(deadline=None, max_examples=80)
@given(rows=rows_st, where=ranges)
@example(rows=MIXED, where=None)
@example(rows=MIXED, where=DateRange("CollectedOn", DAY0 + timedelta(3), DAY0 + timedelta(9)))
@example(rows=[], where=None)
def test_scan_counts_equal_a_python_reference(rows: list[Row], where: DateRange | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files, db = _write(Path(tmp), rows)
        expected = [
            reference("census.csv", NAMES, rows, "csv", where),
            reference("census.parquet", NAMES, rows, "parquet", where),
            reference("other.parquet", OTHER, rows, "parquet", where),
        ]
        total = sum(n for n, _ in expected)
        assert _scanned(str(files), where) == (total, [x for _, got in expected for x in got])
        assert _scanned(str(db), where) == reference("census", NAMES, rows, "sqlite", where)


def test_a_double_column_keeps_zero_and_negative_zero_apart(tmp_path: Path) -> None:
    """Distinct values are counted on their text: 0.0 and -0.0 are equal as numbers but two
    values as text, so grouping must not be done on the native type before the cast."""
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"COB": pa.array([0.0, -0.0, 0.0, None], pa.float64())}), path)
    rows, got = _scanned(str(path), None)
    assert rows == 4
    assert [(c[4], c[5], c[6]) for c in got] == [(3, 0, 2)]


def test_the_recogniser_table_holds_every_value_of_every_recogniser() -> None:
    rules = default_rules()
    con = duck()
    try:
        _recogniser_table(con, rules)
        got = con.execute("SELECT recogniser, value FROM cw_recognised").fetchall()
    finally:
        con.close()
    want = [(name, v) for name, values in rules.recognisers.items() for v in values]
    assert sorted(got) == sorted(want)


def test_an_empty_rule_set_counts_rows_and_flags_nothing(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"Nationality": pa.array(["GBR", None], pa.string())}), path)
    src = open_source(str(path))
    try:
        report = scan(src, RuleSet(()))
    finally:
        src.close()
    assert report.rows == 2 and report.columns == ()


def test_blanks_are_every_character_python_strips() -> None:
    assert "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()) == BLANKS
    assert normalise_value("\u3000\tgbr\r\n\x85") == "GBR"
