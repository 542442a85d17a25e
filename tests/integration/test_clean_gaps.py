"""The Clean gaps closed after the hostile review (``test_attacks_clean.py``): names the
rules missed, names that are enough on their own, files a folder scan skips, and purges of
tables with triggers or of one table among several. Every value is invented."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from pgdb import pg_database

from carewall.clean import open_source, plan, scan
from carewall.clean import purge as purging
from carewall.clean.purge_proof import moved as _moved
from carewall.clean.rules import default_rules, normalise_name
from carewall.clean.scanner import ColumnResult, ScanReport
from carewall.cli import main
from carewall.errors import ScanError
from carewall.ledger.note import Signer

HOLDER = "st-marys-primary"
ODD = "Saint Vincent and the Grenadines"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def instance(tmp_path: Path) -> list[str]:
    opts = ["--db", str(tmp_path / "cw.db"), "--key", str(tmp_path / "cw.key")]
    res = run("init", *opts, "--origin", "school.test/log")
    assert res.exit_code == 0, res.output
    return opts


def apply_args(cert: Path, instance: list[str]) -> list[str]:
    return ["--json", "--apply", "--holder", HOLDER, "--authority", "Retention schedule RS-12",
            "--certificate", str(cert), *instance]  # fmt: skip


def _scan_db(db: Path) -> ScanReport:
    src = open_source(str(db))
    try:
        return scan(src)
    finally:
        src.close()


def _table(db: Path, column: str, values: list[str]) -> None:
    with sqlite3.connect(db) as c:
        c.execute(f'CREATE TABLE t (id INTEGER, "{column}" TEXT)')
        c.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))


# ----- names ---------------------------------------------------------------------------------


def test_names_are_normalised_without_accents() -> None:
    assert normalise_name("Staatsangehörigkeit") == "staatsangehorigkeit"
    assert normalise_name("Narodowość") == "narodowosc"
    assert normalise_name("Nationalité") == "nationalite"
    assert normalise_name("Country_Of-Birth ") == "countryofbirth"


@pytest.mark.parametrize(
    ("column", "category"),
    [("natl", "nationality"), ("nat_2", "nationality"), ("second_natl", "nationality"),
     ("natonality", "nationality"), ("Nationalität", "nationality"),
     ("nazionalità", "nationality"), ("Narodowość", "nationality"),
     ("birth_cntry", "country_of_birth"), ("Geburtsland", "country_of_birth"),
     ("ImmigStatus", "immigration_status"), ("HomeOfficeRef", "immigration_status")],
)  # fmt: skip
def test_more_names_are_candidates(column: str, category: str) -> None:
    assert category in {r.category for r in default_rules().candidates(column)}


@pytest.mark.parametrize(
    ("column", "values"),
    [("Citizenship", ["A*", "B", "C"]),  # the school subject: never on its name alone
     ("BirthPlace", ["Lagos", "Leeds"]),  # towns
     ("ImmunisationStatus", ["Complete", "Partial"]),
     ("NationalTypeOfSchool", ["Academy", "Free school"]),
     ("visa_card_type", ["Debit", "Credit"]),
     ("national_team", ["England", "Wales"])],
)  # fmt: skip
def test_lawful_look_alikes_are_still_left_alone(
    tmp_path: Path, column: str, values: list[str]
) -> None:
    db = tmp_path / "sis.db"
    _table(db, column, values)
    assert _scan_db(db).flagged == []


def test_a_name_alone_flags_under_its_own_rule_and_a_column_is_found_once(
    tmp_path: Path,
) -> None:
    db = tmp_path / "sis.db"
    _table(db, "Nationality", ["Polish", "British"])  # both rules flag it
    report = _scan_db(db)
    assert [(c.column, c.rule) for c in report.flagged] == [
        ("Nationality", "nationality/named-country-or-demonym")
    ]
    assert len(report.to_json()["findings"]) == 1
    db2 = tmp_path / "free.db"
    _table(db2, "Nationality", ["Polish national", "dual British/Irish"])  # free text
    (found,) = _scan_db(db2).flagged
    assert found.rule == "nationality/unambiguous-name" and found.matched == 0


def test_an_empty_column_under_a_clear_name_is_not_flagged(tmp_path: Path) -> None:
    db = tmp_path / "sis.db"
    _table(db, "visa_expiry", [])
    assert _scan_db(db).flagged == []


def test_a_free_text_nationality_column_is_purged(tmp_path: Path, instance: list[str]) -> None:
    db = tmp_path / "sis.db"
    _table(db, "Nationality", ["Polish national", "British citizen", "Romanian (EU)"])
    res = run("purge", str(db), *apply_args(tmp_path / "d.cert", instance))
    assert res.exit_code == 0, res.output
    with sqlite3.connect(db) as c:
        assert c.execute('SELECT count("Nationality") FROM t').fetchone()[0] == 0


# ----- folders -------------------------------------------------------------------------------


def _export(tmp: Path) -> Path:
    folder = tmp / "export"
    (folder / "sub").mkdir(parents=True)
    (folder / "pupils.csv").write_text("upn,Nationality\nZ1,POL\nZ2,GBR\n")
    (folder / "census.tsv").write_text("upn\tNationality\nZ1\tPOL\n")
    (folder / "sub" / "notes.txt").write_text("nothing\n")
    return folder


def test_a_folder_scan_lists_the_files_it_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """In the report, and as a warning (on stderr, by logging's last-resort handler, when
    the application sets no handler: pytest sets its own, so it is read from there)."""
    folder = _export(tmp_path)
    with caplog.at_level(logging.WARNING, logger="carewall.clean"):
        res = run("scan", str(folder), "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["skipped"] == ["census.tsv", "sub/notes.txt"]
    assert "census.tsv" in caplog.text and "NOT checked" in caplog.text
    assert str(tmp_path) not in res.output  # names inside the folder only
    assert "POL" not in res.output


def test_a_folder_of_nothing_readable_says_how_many_files_it_holds(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.json").write_text("{}")
    res = run("scan", str(tmp_path / "x"))
    assert res.exit_code == 2 and "1 other file(s)" in res.output and "a.json" not in res.output


def test_a_folder_purge_lists_and_certifies_the_skipped_files(
    tmp_path: Path, instance: list[str]
) -> None:
    folder = _export(tmp_path)
    res = run("purge", str(folder), *apply_args(tmp_path / "d.cert", instance))
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["skipped"] == ["census.tsv", "sub/notes.txt"]
    body = json.loads((tmp_path / "d.cert").read_text().splitlines()[1])
    assert body["post_purge_scan"]["files_not_scanned"] == 2
    assert "census.tsv" not in (tmp_path / "d.cert").read_text()


# ----- purges: triggers and the whole-source re-scan -----------------------------------------


def _pupils(db: Path, *, history: bool = False) -> None:
    with sqlite3.connect(db) as c:
        c.execute('CREATE TABLE pupils (upn TEXT, "Nationality" TEXT)')
        c.executemany("INSERT INTO pupils VALUES (?, ?)", [(f"Z{i:04d}", ODD) for i in range(20)])
        if history:
            c.execute('CREATE TABLE pupils_history (upn TEXT, "Nationality" TEXT)')
            c.execute(
                "CREATE TRIGGER keep AFTER UPDATE ON pupils BEGIN "
                "INSERT INTO pupils_history VALUES (old.upn, old.Nationality); END"
            )


def test_a_purge_of_a_table_with_a_trigger_is_refused_and_changes_nothing(
    tmp_path: Path, instance: list[str]
) -> None:
    db = tmp_path / "sis.db"
    _pupils(db, history=True)
    before = db.read_bytes()
    res = run("purge", str(db), *apply_args(tmp_path / "d.cert", instance))
    assert res.exit_code == 3, res.output
    assert "'pupils'" in res.output and "trigger" in res.output and "DROP TRIGGER" in res.output
    assert ODD not in res.output and "Traceback" not in res.output
    assert db.read_bytes() == before and not (tmp_path / "d.cert").exists()
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM pupils_history").fetchone()[0] == 0


def test_a_purge_limited_to_one_table_rescans_every_table(
    tmp_path: Path, instance: list[str]
) -> None:
    db = tmp_path / "sis.db"
    _pupils(db)
    with sqlite3.connect(db) as c:
        c.execute('CREATE TABLE staff (id TEXT, "Nationality" TEXT)')
        c.execute("INSERT INTO staff VALUES ('S1', 'Polish')")
    cert = tmp_path / "d.cert"
    res = run("purge", str(db), "--table", "pupils", *apply_args(cert, instance))
    assert res.exit_code == 0, res.output
    post = json.loads(cert.read_text().splitlines()[1])["post_purge_scan"]
    assert post["tables"] == 2 and post["values_remaining"] == 0
    assert post["columns_flagged"] == 0 and post["columns_flagged_elsewhere"] == 1


def _col(table: str, values: int, matched: int, flagged: bool) -> ColumnResult:
    return ColumnResult(table, "Nationality", "nationality", "r", 9, values, matched, 3, flagged)


def _report(*columns: ColumnResult) -> ScanReport:
    return ScanReport("s", "sqlite", 1, 9, columns, ("r",))


def test_values_that_turn_up_elsewhere_during_a_purge_refuse_it() -> None:
    _moved(_report(_col("h", 0, 0, False)), _report(_col("h", 0, 0, False)))
    _moved(_report(_col("h", 5, 5, True)), _report(_col("h", 5, 5, True)))  # left as it was
    for before, after in [
        (_report(_col("h", 0, 0, False)), _report(_col("h", 20, 20, True))),
        (None, _report(_col("h", 2, 2, True))),
        (_report(_col("h", 100, 1, False)), _report(_col("h", 120, 21, False))),
        (_report(_col("h", 5, 5, True)), _report(_col("h", 6, 5, True))),
    ]:
        with pytest.raises(ScanError) as e:
            _moved(before, after)
        assert "'h'" in str(e.value) and "nothing was changed" in str(e.value)


def _failing(certificate: str, body: Mapping[str, Any], commit: Callable[[], None]) -> int:
    raise AssertionError("never reached")


@pytest.mark.postgres
def test_postgres_triggers_and_rules_are_refused() -> None:
    with pg_database("carewall_gaps") as url:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute('CREATE TABLE pupils (upn TEXT, "Nationality" TEXT)')
            c.execute('CREATE TABLE pupils_history (upn TEXT, "Nationality" TEXT)')
            c.execute("INSERT INTO pupils VALUES ('Z1', 'POL'), ('Z2', 'GBR')")
            c.execute(
                "CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                'INSERT INTO pupils_history VALUES (old.upn, old."Nationality"); '
                "RETURN new; END $$"
            )
            c.execute("CREATE TRIGGER keep AFTER UPDATE ON pupils FOR EACH ROW EXECUTE "
                      "FUNCTION keep()")  # fmt: skip
        src = open_source(url)
        try:
            p = plan(src, scan(src))
            with pytest.raises(ScanError) as e:
                purging.apply(src, p, key=b"k" * 32, signer=Signer.generate("school.test/log"),
                              holder=HOLDER, authority="test", issued="2026-01-01T00:00:00Z",
                              recorder=_failing)  # fmt: skip
            assert "'pupils'" in str(e.value) and "keep" in str(e.value)
        finally:
            src.close()
        with psycopg.connect(url, autocommit=True) as c:
            row = c.execute('SELECT count("Nationality") FROM pupils').fetchone()
            assert row is not None and row[0] == 2
            c.execute("DROP TRIGGER keep ON pupils")
            c.execute(
                "CREATE RULE keep AS ON UPDATE TO pupils DO ALSO "
                'INSERT INTO pupils_history VALUES (old.upn, old."Nationality")'
            )
        src = open_source(url)
        try:
            assert src.triggers("pupils") == ["keep"]  # type: ignore[attr-defined]
        finally:
            src.close()
