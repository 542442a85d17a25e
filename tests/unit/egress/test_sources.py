"""Sources: column names unique as DuckDB resolves them, non-scalar columns named, and read
errors that name the source and the problem but never quote a value."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from carewall.egress.engines import count_groups
from carewall.egress.mapping import load_mapping
from carewall.egress.plan import SourceColumns, check_source_columns
from carewall.egress.reading import source_columns
from carewall.egress.sources import Source
from carewall.errors import CarewallError, InputError

MAPPING = load_mapping(
    'subject_ref = "ref"\n[columns]\nname = "name"\n'
    '[facts]\nis_child = "kid"\nis_victim_or_witness = "v"\nconsent = "c"\n'
)
SECRET = "Secret Person"


@pytest.mark.parametrize("header", ["ref,name,name,kid,v,c", "ref,name,NAME,kid,v,c",
                                    "ref,name,kid,v,c,name_1,name_1"])  # fmt: skip
def test_a_csv_header_with_duplicate_names_is_refused(tmp_path: Path, header: str) -> None:
    p = tmp_path / "d.csv"
    p.write_text(header + "\n" + ",".join("x" * len(header.split(","))) + "\n")
    with pytest.raises(InputError, match="several columns named") as e:
        source_columns(Source.csv(p))
    assert "d.csv" in str(e.value) and e.value.fix


def test_a_csv_column_duckdb_renames_is_refused(tmp_path: Path) -> None:
    """A blank header name is ``column2`` to DuckDB, so the real ``column2`` is renamed."""
    p = tmp_path / "d.csv"
    p.write_text("ref,name,,column2,kid,v,c\nP1,a,b,c,no,no,n\n")
    with pytest.raises(InputError, match="read as"):
        source_columns(Source.csv(p))


def test_a_csv_header_as_written_is_accepted(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text('ref,"na,me",kid,v,c\nP1,a,no,no,n\n')
    assert tuple(source_columns(Source.csv(p))) == ("ref", "na,me", "kid", "v", "c")


@pytest.mark.parametrize("names", [["ref", "name", "name"], ["ref", "name", "Name"]])
def test_parquet_duplicate_names_are_refused(tmp_path: Path, names: list[str]) -> None:
    table = pa.Table.from_arrays([pa.array(["x"]) for _ in names], names=names)
    pq.write_table(table, tmp_path / "d.parquet")
    with pytest.raises(InputError, match="several columns named"):
        source_columns(Source.parquet(tmp_path / "d.parquet"))


def test_sqlite_names_differing_in_case_only_are_refused(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "s.db")
    con.execute('CREATE TABLE t (ref, "Ñame", "ñame", kid, v, c)')  # SQLite: ASCII case only
    con.commit()
    con.close()
    with pytest.raises(InputError, match="several columns named"):
        source_columns(Source.sqlite(tmp_path / "s.db", "t"))


def test_the_whole_list_is_checked_by_the_plan() -> None:
    cols = ("ref", "name", "kid", "v", "c", "other", "OTHER")
    with pytest.raises(InputError, match="several columns named 'OTHER'"):
        check_source_columns(MAPPING, cols)


@pytest.mark.parametrize(
    "nested",
    [
        pa.array([{"a": "x", "b": "y"}]),
        pa.array([[("a", "x")]], pa.map_(pa.string(), pa.string())),
        pa.array([["x", "y"]]),
        pa.array([["x", "y"]], pa.large_list(pa.string())),
        pa.array([["x", "y"]], pa.list_(pa.string(), 2)),
    ],
)
@pytest.mark.parametrize("column", ["name", "kid", "ref"])
def test_a_non_scalar_column_is_refused_when_mapped(
    tmp_path: Path, nested: pa.Array, column: str
) -> None:
    cols = {c: pa.array(["x"]) for c in ("ref", "name", "kid", "v", "c", "extra")}
    table = pa.table(cols | {column: nested})
    pq.write_table(table, tmp_path / "n.parquet")
    got = source_columns(Source.parquet(tmp_path / "n.parquet"))
    assert isinstance(got, SourceColumns) and got.nested == {column}
    with pytest.raises(InputError, match="not a scalar column") as e:
        check_source_columns(MAPPING, got)
    assert repr(column) in str(e.value) and "flatten" in str(e.value)


def test_an_unmapped_non_scalar_column_is_left_alone(tmp_path: Path) -> None:
    cols = {c: pa.array(["x"]) for c in ("ref", "name", "kid", "v", "c")}
    pq.write_table(pa.table(cols | {"extra": pa.array([["x"]])}), tmp_path / "n.parquet")
    check_source_columns(MAPPING, source_columns(Source.parquet(tmp_path / "n.parquet")))


def _clean(source: Source, *words: str) -> None:
    with pytest.raises(CarewallError) as e:
        count_groups(source, MAPPING)
    assert isinstance(e.value, InputError)
    assert "Secret" not in str(e.value) and e.value.__cause__ is None
    assert e.value.__suppress_context__
    for w in words:
        assert w in str(e.value)


def test_a_malformed_csv_row_names_its_line_only(tmp_path: Path) -> None:
    rows = "".join(f"P{i},N{i},no,no,n\n" for i in range(3000))
    (tmp_path / "b.csv").write_text("ref,name,kid,v,c\n" + rows + f"Q1,{SECRET},no,no,n,X\n")
    _clean(Source.csv(tmp_path / "b.csv"), "b.csv", "line 3002", "number of fields")


def test_an_unclosed_quote_names_its_line_only(tmp_path: Path) -> None:
    rows = "".join(f"P{i},N{i},no,no,n\n" for i in range(3000))
    (tmp_path / "q.csv").write_text("ref,name,kid,v,c\n" + rows + f'Q1,"{SECRET},no,no,n\n')
    _clean(Source.csv(tmp_path / "q.csv"), "q.csv")


def test_invalid_utf8_in_a_flag_names_its_line_only(tmp_path: Path) -> None:
    rows = "".join(f"P{i},N{i},no,no,n\n" for i in range(3000)).encode()
    body = b"ref,name,kid,v,c\n" + rows + b"Q1,N,no,Secret \xff,n\n"
    (tmp_path / "c.csv").write_bytes(body)
    _clean(Source.csv(tmp_path / "c.csv"), "c.csv", "line 3002", "UTF-8")


def test_invalid_utf8_in_a_parquet_flag_is_not_quoted(tmp_path: Path) -> None:
    good = pa.array(["x"])
    raw = pa.array([b"Secret \xff"], pa.binary())
    bad = pa.Array.from_buffers(pa.string(), 1, raw.buffers())  # not validated
    table = pa.table({"ref": good, "name": good, "kid": bad, "v": good, "c": good})
    pq.write_table(table, tmp_path / "u.parquet")
    _clean(Source.parquet(tmp_path / "u.parquet"), "u.parquet", "UTF-8")


def test_undecodable_sqlite_text_names_its_column_and_row(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "s.db")
    con.execute("CREATE TABLE t (ref, name, kid, v, c)")
    con.execute("INSERT INTO t VALUES ('P1', 'a', 'no', 'no', 'n')")
    con.execute("INSERT INTO t VALUES ('P2', 'a', CAST(X'5365637265740AFF' AS TEXT), 'no', 'n')")
    con.commit()
    con.close()
    _clean(Source.sqlite(tmp_path / "s.db", "t"), "'kid'", "row 2", "UTF-8")


def test_sqlite_text_is_still_read_as_text(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "s.db")
    con.execute("CREATE TABLE t (ref, name, kid, v, c)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                    [("P1", "Zoë", "no", "no", "n"), ("P2", "a", 1, 0, "yes")])  # fmt: skip
    con.commit()
    con.close()
    counts = count_groups(Source.sqlite(tmp_path / "s.db", "t"), MAPPING)
    assert {k.to_json()["is_child"]: v for k, v in counts.items() if v} == {False: 1, True: 1}


@pytest.mark.postgres
def test_postgres_non_scalar_columns_and_names(pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as con:
        try:
            con.execute("CREATE EXTENSION IF NOT EXISTS hstore")
            hstore = ", hs hstore"
        except psycopg.Error:  # not installed on this server
            hstore = ""
        con.execute("CREATE TYPE person AS (forename text, nationality text)")
        con.execute("CREATE DOMAIN names AS text[]")
        con.execute("CREATE TYPE mood AS ENUM ('ok')")
        con.execute(
            "CREATE TABLE t (ref text, name text, kid text, v text, c text, arr text[], "
            f"comp person, dom names, js jsonb, e mood, n int{hstore})"
        )
        con.execute('CREATE TABLE d (ref text, "Name" text, name text, kid text, v text, c text)')
    got = source_columns(Source.postgres(pg_url, "t"))
    assert got.nested == {"arr", "comp", "dom", "js"} | ({"hs"} if hstore else set())
    check_source_columns(MAPPING, got)
    with pytest.raises(InputError, match="several columns named"):
        source_columns(Source.postgres(pg_url, "d"))
