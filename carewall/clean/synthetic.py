"""A synthetic school information system, for tests, benchmarks and demonstrations.

Deterministic (DuckDB's ``hash`` of the row number picks every value), so the same call
always builds the same data, in seconds, on two cores. The ``census`` table holds
nationality and country of birth under several real-world names and codings (the DfE
school census 2016-2018 ``Nationality`` and ``CountryOfBirth`` codes, with "NOT" / "REF",
demonyms, country names, "Refused" and "Not yet obtained"), mixed with lawful columns that
look alike: first language (ISO 639-2 codes, several equal to ISO 3166 country codes),
ethnicity codes, a town of birth, postcodes, the school's country, a trip destination (a
lawful column of country names) and the National Curriculum year. :data:`LABELS` says which
column holds which never-disclosed category, so a scan's precision and recall can be
measured. Every person in it is invented.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb

__all__ = ["LABELS", "census_sql", "write_files", "write_postgres", "write_sqlite"]

# table -> column -> the category it holds (None: lawful, must not be flagged)
LABELS: dict[str, dict[str, str | None]] = {
    "census": {
        "UPN": None,
        "Forename": None,
        "Surname": None,
        "DateOfBirth": None,
        "Postcode": None,
        "Nationality": "nationality",
        "CountryOfBirth": "country_of_birth",
        "nat_desc": "nationality",
        "COB": "country_of_birth",
        "BirthPlace": None,
        "FirstLanguage": None,
        "Ethnicity": None,
        "SchoolCountry": None,
        "TripDestination": None,
        "NationalCurriculumYear": None,
        "CollectedOn": None,
    },
    "admissions": {
        "UPN": None,
        "ResidenceStatus": "immigration_status",
        "HousingStatus": None,
        "CollectedOn": None,
    },
}

_CODES = ["GBR"] * 12 + [
    "POL", "ROU", "IND", "PAK", "BGD", "NGA", "SOM", "LTU", "IRL", "ITA", "PRT", "ESP",
    "AFG", "SYR", "ERI", "CHN", "JAM", "GHA", "NOT", "REF",
]  # fmt: skip
_DEMONYMS = ["British"] * 12 + [
    "Polish", "Romanian", "Indian", "Pakistani", "Bangladeshi", "Nigerian", "Somali",
    "Lithuanian", "Irish", "Italian", "Portuguese", "Spanish", "Afghan", "Syrian",
    "Eritrean", "Chinese", "Jamaican", "Ghanaian", "Refused", "Not yet obtained",
]  # fmt: skip
_NAMES = ["United Kingdom"] * 12 + [
    "Poland", "Romania", "India", "Pakistan", "Bangladesh", "Nigeria", "Somalia",
    "Lithuania", "Ireland", "Italy", "Portugal", "Spain", "Afghanistan", "Syria",
    "Eritrea", "China", "Jamaica", "Ghana", "Not yet obtained", "Refused",
]  # fmt: skip
_LANGUAGES = ["ENG"] * 10 + [
    "POL", "URD", "PAN", "BEN", "SOM", "LIT", "RUM", "POR", "SPA", "ITA", "TUR", "ARA",
    "GUJ", "TAM", "CHI", "FRE", "PER", "YOR",
]  # fmt: skip
_ETHNICITY = ["WBRI", "WIRI", "WOTH", "APKN", "AIND", "ABAN", "BAFR", "BCRB", "CHNE",
              "MWBC", "MWAS", "OOTH", "REFU", "NOBT"]  # fmt: skip
_TOWNS = ["London", "Birmingham", "Leeds", "Manchester", "Bristol", "Sheffield", "Leicester",
          "Bradford", "Coventry", "Lagos", "Karachi", "Warsaw", "Dhaka", "Jersey",
          "Kingston", "Accra", "Mogadishu", "Vilnius"]  # fmt: skip
_TRIPS = ["France", "Spain", "Germany", "Italy", "Belgium", "Netherlands", "Iceland",
          "Poland"]  # fmt: skip
_STATUS = ["British citizen"] * 6 + [
    "EUSS settled", "EUSS pre-settled", "ILR", "Refugee", "Asylum seeker", "Tier 4", "NRPF",
    "Not known",
]  # fmt: skip
_HOUSING = ["Owner occupier", "Social rent", "Private rent", "Temporary accommodation"]
_FORENAMES = ["Amelia", "Oliver", "Zofia", "Mohammed", "Aisha", "Jakub", "Isla", "Noah"]
_SURNAMES = ["Smith", "Kowalski", "Khan", "Okafor", "Jones", "Ahmed", "Nowak", "Brown"]


def _pick(values: list[str], salt: int, nulls: int = 0) -> str:
    """A deterministic choice from ``values`` per row ``i``; ``nulls`` percent are NULL."""
    items = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    choice = f"[{items}][(hash(i * 1000003 + {salt}) % {len(values)})::INTEGER + 1]"
    if not nulls:
        return choice
    return f"CASE WHEN hash(i * 7919 + {salt}) % 100 < {nulls} THEN NULL ELSE {choice} END"


def census_sql(rows: int, table: str = "census") -> str:
    """A DuckDB query producing ``rows`` rows of ``table`` (``census`` or ``admissions``)."""
    date = "DATE '2014-01-01' + ((hash(i * 31 + 5) % 2900)::INTEGER)"
    if table == "admissions":
        cols = {
            "UPN": "'A' || lpad(i::VARCHAR, 12, '0')",
            "ResidenceStatus": _pick(_STATUS, 41, nulls=20),
            "HousingStatus": _pick(_HOUSING, 42),
            "CollectedOn": f"({date})::VARCHAR",
        }
    else:
        cols = {
            "UPN": "'A' || lpad(i::VARCHAR, 12, '0')",
            "Forename": _pick(_FORENAMES, 1),
            "Surname": _pick(_SURNAMES, 2),
            "DateOfBirth": "(DATE '2005-09-01' + ((hash(i * 13 + 3) % 4000)::INTEGER))::VARCHAR",
            "Postcode": "'E' || ((hash(i) % 20) + 1)::VARCHAR || ' ' "
            "|| ((hash(i + 9) % 9) + 1)::VARCHAR || 'AB'",
            "Nationality": _pick(_CODES, 11, nulls=8),
            "CountryOfBirth": _pick(_CODES, 12, nulls=8),
            "nat_desc": _pick(_DEMONYMS, 13, nulls=30),
            "COB": _pick(_NAMES, 14, nulls=30),
            "BirthPlace": _pick(_TOWNS, 15, nulls=10),
            "FirstLanguage": _pick(_LANGUAGES, 16),
            "Ethnicity": _pick(_ETHNICITY, 17),
            "SchoolCountry": _pick(["England", "England", "England", "Wales"], 18),
            "TripDestination": _pick(_TRIPS, 19, nulls=60),
            "NationalCurriculumYear": _pick(["R", *map(str, range(1, 12))], 20),
            "CollectedOn": f"({date})::VARCHAR",
        }
    select = ", ".join(f'{expr} AS "{name}"' for name, expr in cols.items())
    return f"SELECT {select} FROM range({int(rows)}) t(i)"


def write_files(folder: Path, rows: int, *, admissions: int | None = None) -> dict[str, Path]:
    """``census.parquet``, ``census.csv``, ``admissions.parquet`` and ``.csv`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    con = duckdb.connect()
    try:
        for table, n in (("census", rows), ("admissions", admissions or max(1, rows // 10))):
            for fmt in ("parquet", "csv"):
                path = folder / f"{table}.{fmt}"
                opts = "(FORMAT parquet)" if fmt == "parquet" else "(FORMAT csv, HEADER)"
                con.execute(f"COPY ({census_sql(n, table)}) TO '{path}' {opts}")
                out[f"{table}.{fmt}"] = path
    finally:
        con.close()
    return out


def _batches(rows: int, table: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(census_sql(rows, table))
    return con


def _create_sql(table: str, dialect: str) -> str:
    text = "TEXT"
    cols = ", ".join(f'"{c}" {text}' for c in LABELS[table])
    key = ", id INTEGER PRIMARY KEY" if dialect == "sqlite" else ", id SERIAL PRIMARY KEY"
    return f'CREATE TABLE "{table}" ({cols}{key})'


def write_sqlite(path: Path, rows: int, *, admissions: int | None = None) -> Path:
    """A SQLite school information system: ``census`` and ``admissions`` tables."""
    db = sqlite3.connect(path)
    try:
        for table, n in (("census", rows), ("admissions", admissions or max(1, rows // 10))):
            db.execute(_create_sql(table, "sqlite"))
            names = ", ".join(f'"{c}"' for c in LABELS[table])
            marks = ", ".join("?" for _ in LABELS[table])
            con = _batches(n, table)
            while chunk := con.fetchmany(50_000):
                db.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', chunk)
            con.close()
        db.commit()
    finally:
        db.close()
    return path


def write_postgres(url: str, rows: int, *, admissions: int | None = None) -> str:
    """The same tables in the PostgreSQL database at ``url`` (loaded with COPY)."""
    import psycopg

    with psycopg.connect(url) as pg:
        for table, n in (("census", rows), ("admissions", admissions or max(1, rows // 10))):
            pg.execute(_create_sql(table, "postgres"))
            names = ", ".join(f'"{c}"' for c in LABELS[table])
            con = _batches(n, table)
            with pg.cursor().copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                while chunk := con.fetchmany(50_000):
                    for row in chunk:
                        copy.write_row(row)
            con.close()
    return url
