"""Synthetic extracts for the egress tests and benchmark: pupils and NHS demographics.

Deterministic and seeded: DuckDB's ``hash`` of (row number, seed, column) picks every value,
so one call always builds the same table, a million rows in a second or two. Both tables
hold what real extracts hold: names (some with quotes and commas), addresses, dates of
birth, attendance or health columns, nationality and country of birth (never disclosed),
flag columns for child, victim or witness and consent spelt many ways (``Y``, ``yes``,
`` TRUE ``, ``1``, ``no``, ``0``, ``F``, NULL, ``unknown``, ``2``…), and a column the
mapping leaves unmapped. Every person in them is invented. :data:`MAPPINGS` maps each.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

import duckdb
from sqlglot import exp

__all__ = [
    "MAPPINGS",
    "TABLES",
    "TableName",
    "table_sql",
    "write_file",
    "write_postgres",
    "write_sqlite",
]

TableName = Literal["pupils", "nhs"]
TABLES: Final[tuple[TableName, ...]] = ("pupils", "nhs")

_FORENAMES = ["Amira", "Ben", "Chloe", "Dawit", "Ewa", "Farah", "George", "Hana", "Ion",
              "Jamal", "Kofi", "Lena", "Mohammed", "Nia", "Oliver", "Priya", "Zeynep"]  # fmt: skip
_SURNAMES = ["Smith", "O'Brien", "Nowak", "Ahmed", "Okafor", "Popescu", "Khan", "Jones",
             "Haile", "Li", "Da Silva", "Murphy", "Patel", "Brown, Jr."]  # fmt: skip
_STREETS = ["High Street", "Station Road", 'Flat 2, "The Oaks"', "Church Lane", "Mill Road"]
_POSTCODES = ["N7 6PA", "E1 6AN", "LS1 4AP", "M1 1AE", "B5 4BU", "G2 1DY", "CF10 1EP"]
_NATIONALITY = ["British"] * 8 + ["Polish", "Romanian", "Nigerian", "Somali", "Syrian",
                                  "Afghan", "Eritrean", "Indian", "Not yet obtained"]  # fmt: skip
_COB = ["United Kingdom"] * 8 + ["Poland", "Romania", "Nigeria", "Somalia", "Syria",
                                 "Afghanistan", "Eritrea", "India"]  # fmt: skip
_YES = ["Y", "yes", " TRUE ", "1", "t", "Yes"]
_NO = ["N", "no", "false", "0", "F", " No"]
_ODD = [None, None, "unknown", "2", "?"]
_SEN = ["none", "SEN support", "EHC plan"]
_CONDITIONS = ["asthma", "diabetes type 2", "none recorded", "hypertension", "eczema"]
_MENTAL = [None, None, None, "anxiety, under review", "depression"]
_IMMIGRATION = [None] * 6 + ["overseas visitor", "chargeable", "exempt"]

MAPPINGS: Final[dict[TableName, str]] = {
    "pupils": """
subject_ref = "pupil_id"
[columns]
forename = "name"
surname = "name"
address = "address"
postcode = "address"
date_of_birth = "date_of_birth"
attendance_pct = "attendance"
sen_status = "education_record"
nationality = "nationality"
country_of_birth = "country_of_birth"
[facts]
is_child = "under_18"
is_victim_or_witness = "victim_flag"
consent = "consent_recorded"
""",
    "nhs": """
subject_ref = "nhs_number"
[columns]
given_name = "name"
family_name = "name"
address = "address"
postcode = "address"
phone = "contact_details"
birth_date = "date_of_birth"
condition_summary = "health_summary"
mental_health_notes = "mental_health_record"
nationality = "nationality"
country_of_birth = "country_of_birth"
immigration_status = "immigration_status"
[facts]
is_child = "is_minor"
is_victim_or_witness = "victim_or_witness"
consent = "consent"
""",
}


def _lit(value: str | None) -> str:
    return "NULL" if value is None else exp.Literal.string(value).sql("duckdb")


def _pick(values: Sequence[str | None], col: int, seed: int) -> str:
    items = ", ".join(_lit(v) for v in values)
    return f"([{items}])[(hash(i, {seed}, {col}) % {len(values)})::INTEGER + 1]"


def _flag(col: int, seed: int, yes: int) -> str:
    """A flag: ``yes`` in 20 true, the rest mostly false, 1 in 10 NULL or odd."""
    roll = f"(hash(i, {seed}, {col}, 0) % 20)::INTEGER"
    return (
        f"CASE WHEN {roll} < 2 THEN {_pick(_ODD, col, seed)} "
        f"WHEN {roll} < 2 + {yes} THEN {_pick(_YES, col, seed)} "
        f"ELSE {_pick(_NO, col, seed)} END"
    )


def table_sql(table: TableName, rows: int, seed: int = 1) -> str:
    """A SELECT building ``rows`` rows of ``table`` (DuckDB SQL)."""
    n, s = int(rows), int(seed)
    dob = f"(DATE '2000-01-01' + (hash(i, {s}, 5) % 9000)::INTEGER)"
    address = (
        f"CAST((hash(i, {s}, 3) % 200)::INTEGER + 1 AS VARCHAR) || ' ' || {_pick(_STREETS, 4, s)}"
    )
    if table == "pupils":
        cols = [
            "'A' || lpad(CAST(i AS VARCHAR), 12, '0') AS pupil_id",
            f"{_pick(_FORENAMES, 1, s)} AS forename",
            f"{_pick(_SURNAMES, 2, s)} AS surname",
            f"{address} AS address",
            f"{_pick(_POSTCODES, 6, s)} AS postcode",
            f"{dob} AS date_of_birth",
            f"(hash(i, {s}, 7) % 101)::INTEGER AS attendance_pct",
            f"{_pick(_SEN, 8, s)} AS sen_status",
            f"{_pick(_NATIONALITY, 9, s)} AS nationality",
            f"{_pick(_COB, 10, s)} AS country_of_birth",
            f"{_flag(11, s, 15)} AS under_18",
            f"{_flag(12, s, 2)} AS victim_flag",
            f"{_flag(13, s, 6)} AS consent_recorded",
            f"'staff note ' || CAST(hash(i, {s}, 14) % 1000 AS VARCHAR) AS staff_notes",
        ]
    else:
        cols = [
            "CAST(9000000000 + i AS VARCHAR) AS nhs_number",
            f"{_pick(_FORENAMES, 1, s)} AS given_name",
            f"{_pick(_SURNAMES, 2, s)} AS family_name",
            f"{address} AS address",
            f"{_pick(_POSTCODES, 6, s)} AS postcode",
            f"'07700 9' || lpad(CAST(hash(i, {s}, 7) % 100000 AS VARCHAR), 5, '0') AS phone",
            f"{dob} AS birth_date",
            f"{_pick(_CONDITIONS, 8, s)} AS condition_summary",
            f"{_pick(_MENTAL, 9, s)} AS mental_health_notes",
            f"{_pick(_NATIONALITY, 10, s)} AS nationality",
            f"{_pick(_COB, 11, s)} AS country_of_birth",
            f"{_pick(_IMMIGRATION, 12, s)} AS immigration_status",
            f"{_flag(13, s, 4)} AS is_minor",
            f"{_flag(14, s, 2)} AS victim_or_witness",
            f"{_flag(15, s, 8)} AS consent",
            f"'INT-' || CAST(hash(i, {s}, 16) % 100000 AS VARCHAR) AS internal_ref",
        ]
    return f"SELECT {', '.join(cols)} FROM range({n}) AS t(i)"


def write_file(table: TableName, rows: int, path: Path, seed: int = 1) -> Path:
    """Write the table to ``path``: Parquet, or CSV (with a header) when it ends in .csv."""
    fmt = "csv, HEADER true" if path.suffix.lower() == ".csv" else "parquet"
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"COPY ({table_sql(table, rows, seed)}) TO {_lit(str(path))} (FORMAT {fmt})")
    finally:
        con.close()
    return path


def write_sqlite(table: TableName, rows: int, path: Path, seed: int = 1) -> None:
    """The table in a SQLite database (``path``), as table ``table``."""
    con = duckdb.connect()
    try:
        cur = con.execute(table_sql(table, rows, seed))
        names = [d[0] for d in cur.description or ()]
        db = sqlite3.connect(path)
        with db:
            cols = ", ".join('"' + c + '"' for c in names)
            db.execute(f'CREATE TABLE "{table}" ({cols})')
            marks = ", ".join("?" * len(names))
            while batch := cur.fetchmany(50_000):
                db.executemany(f'INSERT INTO "{table}" VALUES ({marks})', batch)
        db.close()
    finally:
        con.close()


def write_postgres(table: TableName, rows: int, url: str, seed: int = 1) -> None:
    """The table in PostgreSQL (text columns, dates as ``date``, integers as ``integer``),
    loaded in row order with COPY, so its physical order is the file's."""
    import tempfile

    import psycopg

    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        rel = con.sql(table_sql(table, rows, seed))
        types = {"DATE": "date", "INTEGER": "integer"}
        cols = ", ".join(
            f'"{n}" {types.get(str(t), "text")}'
            for n, t in zip(rel.columns, rel.types, strict=True)
        )
        with tempfile.TemporaryDirectory(prefix="carewall-synthetic-") as tmp:
            csv = write_file(table, rows, Path(tmp) / f"{table}.csv", seed)
            with psycopg.connect(url) as pg:
                pg.execute(f'CREATE TABLE "{table}" ({cols})')
                sql = f'COPY "{table}" FROM STDIN (FORMAT csv, HEADER true)'
                with pg.cursor().copy(sql) as copy, csv.open("rb") as f:
                    while chunk := f.read(1 << 20):
                        copy.write(chunk)
    finally:
        con.close()
