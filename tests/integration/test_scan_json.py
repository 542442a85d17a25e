"""``carewall scan`` looks inside JSON held in a column ("extra fields", "demographics"
blobs): each key path is judged by the rules as a column is, the finding names the key path
and never a value, and malformed, huge or deep JSON neither crashes nor stalls the scan.
Every value is invented."""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from pgdb import pg_database

from carewall.clean import open_source, scan
from carewall.clean.jsonscan import MAX_DEPTH
from carewall.clean.scanner import ScanReport
from carewall.cli import main

CANARY = "ZZ-CANARY Jane Q Fakename"


def _db(tmp: Path, column: str, values: list[Any], *, kind: str = "json") -> Path:
    """A SQLite table ``pupils`` (upn, ``column``): ``values`` as JSON text (or as given)."""
    db = tmp / "sis.db"
    with sqlite3.connect(db) as c:
        c.execute(f'CREATE TABLE pupils (upn TEXT, "{column}" TEXT)')
        c.executemany(
            "INSERT INTO pupils VALUES (?, ?)",
            [(f"Z{i:012d}", json.dumps(v) if kind == "json" else v) for i, v in enumerate(values)],
        )
    return db


def _scan(spec: Path | str) -> ScanReport:
    src = open_source(str(spec))
    try:
        return scan(src)
    finally:
        src.close()


def _found(report: ScanReport) -> set[tuple[str, str]]:
    return {(c.where, c.category) for c in report.flagged}


# ----- what is found -------------------------------------------------------------------------

FOUND = [
    pytest.param("demographics", [{"nationality": "POL"}, {"nationality": "GBR"}],
                 "demographics.nationality", "nationality", id="flat"),
    pytest.param("demographics", [{"pupil": {"nat": "POL"}}, {"pupil": {"nat": "ROU"}}],
                 "demographics.pupil.nat", "nationality", id="nested"),
    pytest.param("demographics", [{"birth": {"country": "Poland"}}, {"birth": {"country": "GBR"}}],
                 "demographics.birth.country", "country_of_birth", id="keys-joined"),
    pytest.param("extra", [[{"birth_country": "GBR", "club": "chess"}], [{"birth_country": "NGA"}]],
                 "extra[].birth_country", "country_of_birth", id="array-of-objects"),
    pytest.param("demographics", [{"contacts": [{"nationality": "POL"}, {"nationality": "GBR"}]}],
                 "demographics.contacts[].nationality", "nationality", id="nested-array"),
    pytest.param("demographics", [{"nationalities": ["POL", "GBR"]}],
                 "demographics.nationalities[]", "nationality", id="array-of-codes"),
    pytest.param("demographics", [{"Staatsangehörigkeit": "POL"}],
                 "demographics.Staatsangehörigkeit", "nationality", id="accents"),
    pytest.param("demographics", [{"immigration": {"status": "ILR"}}, {"immigration": {}}],
                 "demographics.immigration.status", "immigration_status", id="status"),
    pytest.param("demographics", [{"nationality": "Polish national"}],
                 "demographics.nationality", "nationality", id="free-text-unambiguous"),
    pytest.param("demographics", [{"visa_expiry": "2027-01-31"}],
                 "demographics.visa_expiry", "immigration_status", id="visa-expiry"),
    pytest.param("country", [{"of_birth": "POL"}, {"of_birth": "GBR"}],
                 "country.of_birth", "country_of_birth", id="column-and-key"),
    pytest.param("demographics", [{"records": {"A123456789012": {"nationality": "POL"}}}],
                 "demographics.records.#.nationality", "nationality", id="keyed-by-upn"),
]  # fmt: skip


@pytest.mark.parametrize(("column", "values", "path", "category"), FOUND)
def test_a_key_path_is_judged_like_a_column(
    tmp_path: Path, column: str, values: list[Any], path: str, category: str
) -> None:
    report = _scan(_db(tmp_path, column, values))
    assert (path, category) in _found(report), report.columns
    assert [(j.column, j.json) for j in report.json_columns] == [(column, len(values))]


LAWFUL = [
    pytest.param([{"first_language": "POL"}, {"first_language": "BEN"}], id="first-language"),
    pytest.param([{"trip": {"destination": "France"}}], id="trip-destination"),
    pytest.param([{"school": {"country": "England"}}], id="school-country"),
    pytest.param([{"NatCurriculumYear": "5"}], id="curriculum-year"),
    pytest.param([{"citizenship": "A*"}, {"citizenship": "B"}], id="school-subject"),
    pytest.param([{"visa_card_type": "Debit"}], id="payment-card"),
    pytest.param([{"national_team": "Wales"}], id="national-team"),
    pytest.param([{"nationality": None}, {"nationality": None}], id="nothing-held"),
    pytest.param([{"country": "POL"}, {"country": "GBR"}], id="innocent-name"),  # as a column
]


@pytest.mark.parametrize("values", LAWFUL)
def test_lawful_keys_are_left_alone(tmp_path: Path, values: list[Any]) -> None:
    report = _scan(_db(tmp_path, "demographics", values))
    assert report.flagged == []
    assert [j.column for j in report.json_columns] == ["demographics"]  # looked into


def test_a_share_too_small_is_not_flagged_and_is_shown_as_checked(tmp_path: Path) -> None:
    values = [{"citizenship": v} for v in ["POL", "A*", "B", "C", "A"]]  # 1 in 5: a subject
    report = _scan(_db(tmp_path, "demographics", values))
    assert report.flagged == []
    (checked,) = [c for c in report.columns if c.rule.startswith("nationality/named")]
    assert (checked.where, checked.values, checked.matched) == ("demographics.citizenship", 5, 1)


def test_a_column_mostly_not_json_is_not_read_as_json(tmp_path: Path) -> None:
    notes = ["called parent", '{"nationality": "POL"}', "no answer", "left message"]
    report = _scan(_db(tmp_path, "notes", notes, kind="text"))
    assert report.json_columns == () and report.flagged == []


def test_malformed_json_is_simply_not_json_and_never_shown(tmp_path: Path) -> None:
    good = [json.dumps({"nationality": n}) for n in ["POL", "GBR", "ROU", "NGA", "IRL", "FRA"]]
    bad = ['{"nationality": "' + CANARY, '{"nationality": NaN}', "[" * 100_000, '"POL"',
           '{"nat": "X"} ' + CANARY]  # fmt: skip
    db = _db(tmp_path, "demographics", [*good, *bad, ""], kind="text")
    res = CliRunner().invoke(main, ["scan", str(db), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert CANARY not in res.output and "Fakename" not in res.output
    assert [f["key_path"] for f in doc["findings"]] == ["demographics.nationality"]
    (col,) = doc["json_columns"]
    assert (col["values"], col["json"], col["unread"]) == (12, 6, 5)  # a blank is not unread


def test_huge_wide_and_deep_json_is_bounded(tmp_path: Path) -> None:
    """Nesting past the parser, past :data:`MAX_DEPTH`, 60,000 keys, 2 MB, 30,000 items
    and a map of 3,000 names: read in part or not at all, each counted, in seconds."""
    deep_nat: Any = {"nationality": "POL"}
    for _ in range(MAX_DEPTH + 4):
        deep_nat = {"a": deep_nat}
    names = {f"name{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}{chr(97 + i // 676)}":
             {"nationality": "GBR"} for i in range(3_000)}  # fmt: skip
    values = [
        "[" * 300_000 + "]" * 300_000,
        json.dumps(deep_nat),
        json.dumps({f"k{i}": i for i in range(60_000)}),  # keys like data: not a map
        json.dumps({"nationality": "POL", "pad": "x" * 2_000_000}),
        json.dumps([{"nationality": "POL"}] * 30_000),
        json.dumps({"pupils": names}),
    ] * 3
    db = _db(tmp_path, "blob", values, kind="text")
    started = time.perf_counter()
    report = _scan(db)
    took = time.perf_counter() - started
    assert took < 60, took  # about 2 s on an idle machine
    (col,) = report.json_columns
    assert (col.values, col.json, col.unread, col.cut) == (18, 12, 6, 12)
    found = {c.where for c in report.flagged}
    assert found == {"blob[].nationality", "blob.pupils.*.nationality"}, found
    assert not any("name" in c.where.replace("nationality", "") for c in report.columns)


def test_the_cli_names_the_key_path_and_no_value(tmp_path: Path) -> None:
    values = [{"nationality": "POL", "first_language": "ITA", "extra": [{"birth_country": "NGA"}]},
              {"nationality": "GBR", "first_language": "BEN"}]  # fmt: skip
    db = _db(tmp_path, "demographics", values)
    res = CliRunner().invoke(main, ["scan", str(db), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    findings = {(f["column"], f["key_path"], f["category"]) for f in doc["findings"]}
    assert findings == {("demographics", "demographics.nationality", "nationality"),
                        ("demographics", "demographics.extra[].birth_country",
                         "country_of_birth")}  # fmt: skip
    for f in doc["findings"]:
        assert set(f) == {"table", "column", "key_path", "category", "rule", "rows", "values",
                          "matched", "distinct", "share", "flagged"}  # fmt: skip
    assert doc["json_columns"] == [{"table": "pupils", "column": "demographics", "values": 2,
                                    "json": 2, "unread": 0, "cut": 0, "key_paths": 3}]  # fmt: skip
    for value in ("POL", "GBR", "NGA", "ITA", "BEN", "Z000000000000"):
        assert value not in res.stdout
    table = CliRunner().invoke(main, ["scan", str(db)])
    assert table.exit_code == 0, table.output
    assert "looked inside the JSON values of 1 column(s): pupils.demographics" in table.stdout
    assert "2 column(s) hold personal data" in table.stdout and "POL" not in table.stdout


def test_a_csv_export_is_looked_into(tmp_path: Path) -> None:
    path = tmp_path / "pupils.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["upn", "extra_fields"])
        for upn, country in [("Z1", "Poland"), ("Z2", "Nigeria")]:
            w.writerow([upn, json.dumps({"CountryOfBirth": country, "house": "Red"})])
    assert _found(_scan(path)) == {("extra_fields.CountryOfBirth", "country_of_birth")}


@pytest.mark.postgres
def test_postgres_jsonb_json_and_text_are_looked_into() -> None:
    with pg_database("carewall_json") as url:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("CREATE TABLE pupils (upn TEXT, a JSONB, b JSON, c TEXT)")
            for i, nat in enumerate(["POL", "GBR"]):
                doc = json.dumps({"nationality": nat, "first_language": "POL"})
                c.execute("INSERT INTO pupils VALUES (%s, %s, %s, %s)", (f"Z{i}", doc, doc, doc))
        found = _found(_scan(url))
    assert found == {(f"{col}.nationality", "nationality") for col in "abc"}
