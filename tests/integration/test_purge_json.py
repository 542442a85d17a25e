"""``carewall purge`` of a key path inside a JSON column: the key (and its value) is removed
from each JSON value in the range, the rest of the value and the column kept, in the same
transaction (or new file) as the rest, proved by the re-scan and described by the
certificate. Every value is invented."""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from click.testing import CliRunner, Result
from pgdb import pg_database

from carewall.clean import open_certificate, open_source, plan, scan
from carewall.clean import purge as purging
from carewall.clean.certificate import ValueCommitment
from carewall.clean.sources import DateRange
from carewall.cli import main
from carewall.ledger.note import Signer

HOLDER = "st-marys-primary"
RANGE = ["--date-column", "CollectedOn", "--from", "2016-01-01", "--to", "2018-12-31"]
KEY = b"k" * 32


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


# Rows: (upn, demographics, extra, CollectedOn). Z0-Z2 are in the range, Z3 after it. A
# plain "Nationality" column beside them holds a value for Z0 and Z3 (see _sis).
ROWS = [
    ("Z0", {"nationality": "POL", "first_language": "POL", "fsm": 1.10},
     [{"birth_country": "Poland", "club": "chess"}, {"birth_country": "GBR"}], "2016-09-01"),
    ("Z1", {"nationality": "GBR", "pupil": {"nat": "ROU", "house": "Red"}}, [], "2017-09-01"),
    ("Z2", {"first_language": "ENG"}, None, "2018-09-01"),
    ("Z3", {"nationality": "NGA", "first_language": "YOR"}, [{"birth_country": "NGA"}],
     "2020-09-01"),
]  # fmt: skip


PLAIN = {"Z0": "Polish", "Z3": "Nigerian"}


def _text(value: Any) -> str:
    """JSON as an application may write it: spaced, and ``1.10`` where Python writes 1.1."""
    return json.dumps(value).replace(": 1.1,", ": 1.10,").replace(": 1.1}", ": 1.10}")


def _sis(db: Path) -> Path:
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE pupils (upn TEXT, demographics TEXT, extra TEXT, "
                  'CollectedOn TEXT, "Nationality" TEXT)')  # fmt: skip
        c.executemany(
            "INSERT INTO pupils VALUES (?, ?, ?, ?, ?)",
            [(u, _text(d), None if e is None else _text(e), on, PLAIN.get(u))
             for u, d, e, on in ROWS],
        )  # fmt: skip
    return db


def _rows(db: Path) -> dict[str, tuple[Any, Any]]:
    with sqlite3.connect(db) as c:
        got = c.execute("SELECT upn, demographics, extra FROM pupils ORDER BY upn").fetchall()
    return {u: (d if d is None else json.loads(d), e if e is None else json.loads(e))
            for u, d, e in got}  # fmt: skip


def _body(cert: Path) -> dict[str, Any]:
    return dict(json.loads(cert.read_text().splitlines()[1]))


def test_sqlite_purge_removes_the_keys_in_range_and_keeps_the_rest(
    tmp_path: Path, instance: list[str]
) -> None:
    db = _sis(tmp_path / "sis.db")
    dry = run("purge", str(db), *RANGE, "--json")
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)["tables"][0]
    assert {(c.get("key_path"), c.get("action"), c["values"]) for c in planned["columns"]} == {
        (None, None, 1),  # the plain Nationality column, nulled (Z0)
        ("demographics.nationality", "remove_key", 2),
        ("demographics.pupil.nat", "remove_key", 1),
        ("extra[].birth_country", "remove_key", 2),
    }
    assert planned["records"] == 2 and "POL" not in dry.stdout  # Z0 (both), Z1 (JSON only)
    cert = tmp_path / "d.cert"
    res = run("purge", str(db), *RANGE, *apply_args(cert, instance))
    assert res.exit_code == 0, res.output
    assert _rows(db) == {
        "Z0": ({"first_language": "POL", "fsm": 1.1}, [{"club": "chess"}, {}]),
        "Z1": ({"pupil": {"house": "Red"}}, []),
        "Z2": ({"first_language": "ENG"}, None),
        "Z3": ({"nationality": "NGA", "first_language": "YOR"}, [{"birth_country": "NGA"}]),
    }
    with sqlite3.connect(db) as c:  # the number as it was written, not as a float prints it
        assert '"fsm":1.10' in c.execute("SELECT demographics FROM pupils").fetchone()[0]
    body = _body(cert)
    (table,) = body["tables"]
    assert table["records"] == 2 and body["records"] == 2
    for column in table["columns"]:
        assert column.get("action", "null") in ("null", "remove_key")
        assert column["commitment"].startswith("hmac-sha256:")
    post = body["post_purge_scan"]
    assert post["values_remaining"] == 0 and post["json_values_not_read"] == 0
    for value in ("POL", "GBR", "ROU", "Poland", "Polish"):
        assert value not in cert.read_text()
    check = run("scan", str(db), "--json", *RANGE)
    assert json.loads(check.stdout)["findings"] == []  # none left in 2016-2018
    after = json.loads(run("scan", str(db), "--json").stdout)["findings"]
    assert {f.get("key_path", f["column"]) for f in after} == {
        "Nationality",
        "demographics.nationality",
        "extra[].birth_country",
    }  # Z3, out of range
    with sqlite3.connect(db) as c:
        assert c.execute('SELECT upn FROM pupils WHERE "Nationality" IS NOT NULL').fetchall() == [
            ("Z3",)]  # fmt: skip


def _apply(db: Path, recorder: purging.Recorder, where: DateRange | None = None) -> Any:
    src = open_source(str(db))
    try:
        p = plan(src, scan(src, where=where), date_range=where)
        return purging.apply(src, p, key=KEY, signer=Signer.generate("school.test/log"),
                             holder=HOLDER, authority="test", issued="2026-01-01T00:00:00Z",
                             recorder=recorder)  # fmt: skip
    finally:
        src.close()


def _committing(certificate: str, body: Mapping[str, Any], commit: Callable[[], None]) -> int:
    commit()
    return 0


def _failing(certificate: str, body: Mapping[str, Any], commit: Callable[[], None]) -> int:
    raise OSError("the log is unreachable")


def test_the_commitment_opens_with_the_removed_values_and_the_certificate_verifies(
    tmp_path: Path,
) -> None:
    db = _sis(tmp_path / "sis.db")
    signer = Signer.generate("school.test/log")
    src = open_source(str(db))
    try:
        p = plan(src, scan(src))
        done = purging.apply(src, p, key=KEY, signer=signer, holder=HOLDER, authority="test",
                             issued="2026-01-01T00:00:00Z", recorder=_committing)  # fmt: skip
    finally:
        src.close()
    body = open_certificate(done.certificate, signer.verifier())
    columns = {c.get("key_path", c["column"]): c for c in body["tables"][0]["columns"]}
    for path, removed in [("demographics.nationality", ["POL", "GBR", "NGA"]),
                          ("extra[].birth_country", ["Poland", "GBR", "NGA"])]:  # fmt: skip
        mac = ValueCommitment(KEY, "pupils", path)
        mac.add(sorted(removed, key=lambda v: v.encode()))
        assert columns[path]["commitment"] == mac.hexdigest()
        assert columns[path]["values"] == 3


def test_a_failure_leaves_every_json_value_as_it_was(tmp_path: Path) -> None:
    db = _sis(tmp_path / "sis.db")
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    where = DateRange("CollectedOn", date(2016, 1, 1), date(2018, 12, 31))
    with pytest.raises(OSError):
        _apply(db, _failing, where)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_a_key_path_naming_no_key_nulls_its_column(tmp_path: Path, instance: list[str]) -> None:
    """``citizenship`` holding arrays of codes: the value itself is the data, so the column
    is nulled as a column would be (no key to remove)."""
    db = tmp_path / "sis.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE pupils (upn TEXT, citizenship TEXT)")
        c.executemany("INSERT INTO pupils VALUES (?, ?)", [("Z0", '["POL", "GBR"]'),
                                                            ("Z1", '["ROU"]')])  # fmt: skip
    src = open_source(str(db))
    try:
        assert {c.where for c in scan(src).flagged} == {"citizenship[]"}
    finally:
        src.close()
    cert = tmp_path / "d.cert"
    res = run("purge", str(db), *apply_args(cert, instance))
    assert res.exit_code == 0, res.output
    (column,) = _body(cert)["tables"][0]["columns"]
    assert column["column"] == "citizenship" and "key_path" not in column
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(citizenship) FROM pupils").fetchone()[0] == 0


def test_a_table_without_rowid_is_refused_naming_it(tmp_path: Path, instance: list[str]) -> None:
    db = tmp_path / "sis.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE pupils (upn TEXT PRIMARY KEY, extra TEXT) WITHOUT ROWID")
        c.execute("""INSERT INTO pupils VALUES ('Z0', '{"nationality": "POL"}')""")
    before = db.read_bytes()
    res = run("purge", str(db), *apply_args(tmp_path / "d.cert", instance))
    assert res.exit_code == 3, res.output
    assert "'pupils'" in res.output and "rowid" in res.output and "POL" not in res.output
    assert db.read_bytes() == before and not (tmp_path / "d.cert").exists()


def test_a_column_flagged_itself_is_nulled_with_its_key_paths(
    tmp_path: Path, instance: list[str]
) -> None:
    db = tmp_path / "sis.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE pupils (upn TEXT, nationality_detail TEXT)")
        c.execute("""INSERT INTO pupils VALUES ('Z0', '{"nationality": "POL", "since": 2019}')""")
    cert = tmp_path / "d.cert"
    assert run("purge", str(db), *apply_args(cert, instance)).exit_code == 0
    (column,) = _body(cert)["tables"][0]["columns"]
    assert column == {**column, "column": "nationality_detail", "values": 1}
    assert "key_path" not in column


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_is_rewritten_without_the_keys(
    tmp_path: Path, instance: list[str], suffix: str
) -> None:
    path = tmp_path / f"pupils{suffix}"
    rows = [{"upn": u, "demographics": json.dumps(d), "n": i, "CollectedOn": on}
            for i, (u, d, _, on) in enumerate(ROWS)]  # fmt: skip
    if suffix == ".csv":
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    cert = tmp_path / "d.cert"
    res = run("purge", str(path), *RANGE, *apply_args(cert, instance))
    assert res.exit_code == 0, res.output
    if suffix == ".csv":
        with path.open(newline="") as f:
            got = list(csv.DictReader(f))
    else:
        table = pq.read_table(path)
        assert table.schema.field("n").type == pa.int64()  # types kept
        got = table.to_pylist()
    demographics = [json.loads(r["demographics"]) for r in got]
    assert demographics == [{"first_language": "POL", "fsm": 1.1}, {"pupil": {"house": "Red"}},
                            {"first_language": "ENG"},
                            {"nationality": "NGA", "first_language": "YOR"}]  # fmt: skip
    assert [r["upn"] for r in got] == ["Z0", "Z1", "Z2", "Z3"]
    (table_entry,) = _body(cert)["tables"]
    assert table_entry["sha256_after"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert {c["key_path"] for c in table_entry["columns"]} == {
        "demographics.nationality", "demographics.pupil.nat"}  # fmt: skip


@pytest.mark.postgres
def test_postgres_purge_rewrites_jsonb_json_and_text(tmp_path: Path, instance: list[str]) -> None:
    with pg_database("carewall_purge_json") as url:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("CREATE TABLE pupils (upn TEXT, a JSONB, b JSON, c TEXT, "
                      '"CollectedOn" DATE, "Nationality" TEXT)')  # fmt: skip
            for u, d, _, on in ROWS:
                doc = json.dumps(d)
                c.execute("INSERT INTO pupils VALUES (%s, %s, %s, %s, %s, %s)",
                          (u, doc, doc, doc, on, PLAIN.get(u)))  # fmt: skip
        cert = tmp_path / "d.cert"
        res = run("purge", url, *RANGE, *apply_args(cert, instance))
        assert res.exit_code == 0, res.output
        with psycopg.connect(url) as c:
            got = c.execute("SELECT upn, a, b::text, c FROM pupils ORDER BY upn").fetchall()
            plain = c.execute('SELECT upn FROM pupils WHERE "Nationality" IS NOT NULL').fetchall()
        assert run("scan", url, "--json", *RANGE).stdout.count('"key_path"') == 0
    for upn, a, b, text in got:
        assert a == json.loads(b) == json.loads(text)
        assert ("nationality" in a) == (upn == "Z3") and "nat" not in a.get("pupil", {})
    assert got[0][1] == {"first_language": "POL", "fsm": 1.1}
    assert plain == [("Z3",)] and _body(cert)["records"] == 2  # Z0 (both), Z1 (JSON only)


def test_a_constraint_refusing_the_rewrite_changes_nothing_and_shows_no_value(
    tmp_path: Path, instance: list[str]
) -> None:
    db = tmp_path / "sis.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE pupils (upn TEXT, extra TEXT UNIQUE)")
        c.executemany("INSERT INTO pupils VALUES (?, ?)", [
            ("Z0", '{"nationality": "POL", "house": "ZZ-CANARY"}'),
            ("Z1", '{"nationality": "GBR", "house": "ZZ-CANARY"}'),  # both become the same
        ])  # fmt: skip
    before = db.read_bytes()
    res = run("purge", str(db), *apply_args(tmp_path / "d.cert", instance))
    assert res.exit_code == 3 and "Traceback" not in res.output, res.output
    assert "'pupils'" in res.output and "constraints" in res.output
    assert "CANARY" not in res.output and "POL" not in res.output
    assert db.read_bytes() == before and not (tmp_path / "d.cert").exists()
