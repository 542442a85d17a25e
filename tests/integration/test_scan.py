"""``carewall scan`` on a synthetic school information system of 200,000 pupils: SQLite,
PostgreSQL, CSV, Parquet and a folder of them. Precision and recall per column are printed
and must both be 1: no lawful column flagged, no unlawful one missed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pgdb import pg_database

from carewall.clean import open_source, scan
from carewall.clean.scanner import ScanReport
from carewall.clean.synthetic import LABELS, write_files, write_postgres, write_sqlite
from carewall.cli import main

PUPILS = 200_000


@pytest.fixture(scope="session")
def census_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("census-files")
    write_files(folder, PUPILS)
    return folder


@pytest.fixture(scope="session")
def census_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sqlite(tmp_path_factory.mktemp("census-sqlite") / "sis.db", PUPILS)


@pytest.fixture(scope="session")
def census_postgres() -> Iterator[str]:
    with pg_database("carewall_scan") as url:
        yield write_postgres(url, PUPILS)


def _truth(table: str) -> dict[str, str | None]:
    return LABELS[table.split(".")[0]]


def _score(report: ScanReport) -> list[tuple[str, str, str, str]]:
    """One row per labelled column: (table, column, truth, verdict); asserts nothing."""
    flagged = {(c.table, c.column): c.category for c in report.flagged}
    tables = {c.table for c in report.columns} | {t for t, _ in flagged}
    rows = []
    for table in sorted(tables):
        for column, truth in _truth(table).items():
            got = flagged.get((table, column))
            verdict = "TN" if truth is None and got is None else "TP" if truth == got else (
                "FP" if truth is None else "FN")  # fmt: skip
            rows.append((table, column, str(truth), verdict))
    return rows


def _assert_perfect(report: ScanReport, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _score(report)
    tp = sum(r[3] == "TP" for r in rows)
    fp = sum(r[3] == "FP" for r in rows)
    fn = sum(r[3] == "FN" for r in rows)
    with capsys.disabled():
        print(f"\nscan of {report.source} ({report.kind}), {report.rows:,} rows:")
        for table, column, truth, verdict in rows:
            if truth != "None" or verdict != "TN":
                recall = 1.0 if verdict == "TP" else 0.0
                print(f"  {table}.{column:<16} {truth:<19} {verdict}  recall={recall:.2f}")
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        print(f"  precision={precision:.2f} recall={recall:.2f} "
              f"(lawful columns checked: {sum(r[2] == 'None' for r in rows)})")  # fmt: skip
    assert fp == 0 and fn == 0, [r for r in rows if r[3] in ("FP", "FN")]
    assert tp == sum(1 for r in rows if r[2] != "None")


def test_sqlite(census_sqlite: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = open_source(str(census_sqlite))
    try:
        report = scan(src)
    finally:
        src.close()
    assert report.rows == PUPILS + PUPILS // 10
    _assert_perfect(report, capsys)


@pytest.mark.postgres
def test_postgres(census_postgres: str, capsys: pytest.CaptureFixture[str]) -> None:
    src = open_source(census_postgres)
    try:
        report = scan(src)
    finally:
        src.close()
    assert report.rows == PUPILS + PUPILS // 10
    assert "@" not in report.source and "postgres@" not in json.dumps(report.to_json())
    _assert_perfect(report, capsys)


def _nationality_only(spec: str) -> ScanReport:
    src = open_source(spec)
    try:
        return scan(src, categories=["nationality"])
    finally:
        src.close()


def test_sqlite_table_with_no_candidate_column_is_counted(census_sqlite: Path) -> None:
    # With nationality rules only, `admissions` has no column any rule looks at: it was
    # read as `SELECT 1`, and its integers were made text before the branch that skips
    # them, so the whole scan failed. Its rows are counted and nothing in it is flagged.
    report = _nationality_only(str(census_sqlite))
    assert report.rows == PUPILS + PUPILS // 10
    assert {c.table for c in report.columns} == {"census"}
    assert {c.category for c in report.flagged} == {"nationality"}


@pytest.mark.postgres
def test_postgres_table_with_no_candidate_column_is_counted(census_postgres: str) -> None:
    report = _nationality_only(census_postgres)
    assert report.rows == PUPILS + PUPILS // 10
    assert {c.table.split(".")[-1] for c in report.columns} == {"census"}
    assert {c.category for c in report.flagged} == {"nationality"}


@pytest.mark.parametrize("name", ["census.parquet", "census.csv"])
def test_one_file(census_files: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    src = open_source(str(census_files / name))
    try:
        report = scan(src)
    finally:
        src.close()
    assert report.tables == 1 and report.rows == PUPILS
    _assert_perfect(report, capsys)


def test_folder_through_the_cli(census_files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = CliRunner().invoke(main, ["scan", str(census_files), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["tables"] == 4 and doc["kind"] == "folder"
    flagged = {(f["table"], f["column"]) for f in doc["findings"]}
    assert ("census.csv", "nat_desc") in flagged and (
        "admissions.parquet",
        "ResidenceStatus",
    ) in flagged
    assert ("census.csv", "BirthPlace") not in flagged  # towns, under a birth-place name
    # Counts only: none of the values themselves is ever shown.
    for value in ("GBR", "POL", "Polish", "British", "Poland", "Refused", "ILR", "Lagos"):
        assert value not in res.stdout
    for f in doc["findings"]:
        assert set(f) == {"table", "column", "category", "rule", "rows", "values", "matched",
                          "distinct", "share", "flagged"}  # fmt: skip


def test_table_output_and_category_filter(census_files: Path) -> None:
    res = CliRunner().invoke(main, ["scan", str(census_files / "census.parquet"),
                                    "--category", "country_of_birth"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "2 column(s) hold personal data" in res.stdout
    assert "GBR" not in res.stdout


def test_date_range_limits_the_rows(census_files: Path) -> None:
    args = ["scan", str(census_files / "census.parquet"), "--json", "--date-column",
            "CollectedOn", "--from", "2016-01-01", "--to", "2018-12-31"]  # fmt: skip
    doc = json.loads(CliRunner().invoke(main, args).stdout)
    assert 0 < doc["rows"] < PUPILS


ERRORS = [
    (["scan", "/nonexistent/x.db"], "SOURCE"),
    (["scan", "README.md"], "SOURCE"),
    (["scan", "{files}", "--category", "health_record"], "--category"),
    (
        [
            "scan",
            "{files}",
            "--date-column",
            "CollectedOn",
            "--from",
            "2016-13-01",
            "--to",
            "2017-01-01",
        ],
        "--from",
    ),
    (
        ["scan", "{files}", "--date-column", "Nope", "--from", "2016-01-01", "--to", "2017-01-01"],
        "--date-column",
    ),
]


@pytest.mark.parametrize(("args", "field"), ERRORS)
def test_errors_are_one_line_naming_the_field(
    census_files: Path, args: list[str], field: str
) -> None:
    res = CliRunner().invoke(main, [a.replace("{files}", str(census_files)) for a in args])
    assert res.exit_code in (2, 3), res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}: "), res.stderr
    assert "Traceback" not in res.output
