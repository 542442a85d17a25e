"""The egress filter on every engine, over synthetic extracts of a million rows.

DuckDB (files, SQLite, PostgreSQL streamed in), PostgreSQL (the query on the server) and
Spark (local mode) must write the same rows, row for row, as an independent oracle computed
with pyarrow from the source: only the permitted columns, NULL where a row's group may not
have one, no row of a group that may receive nothing, never a never-disclosed, flag,
subject-reference or unmapped column. A request the policy refuses outright (to an
immigration-enforcement body) writes no file at all.

The whole module shares one worker (``xdist_group``), so the extracts and the Spark session
are built once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pgdb import pg_database

from carewall.egress import (
    EgressPlan,
    Source,
    build_plan,
    count_groups,
    dry_run,
    load_mapping,
    run,
    source_columns,
)
from carewall.egress.mapping import FALSE_WORDS, TRUE_WORDS
from carewall.egress.plan import GROUPS
from carewall.egress.synthetic import MAPPINGS, write_file, write_postgres, write_sqlite
from carewall.errors import InputError
from carewall.policy import DEFAULT_REGISTER_PATH, Engine, load_register
from carewall.policy.decision import CategoryDecision
from carewall.policy.facts import RequestFacts, SubjectFacts

pytestmark = pytest.mark.xdist_group("spark")

ROWS = 1_000_000
FORBIDDEN = {"nationality", "country_of_birth", "immigration_status"}
PUPIL_CATS = ["name", "address", "date_of_birth", "attendance", "nationality", "country_of_birth"]
NHS_CATS = ["name", "address", "contact_details", "health_summary", "nationality",
            "immigration_status"]  # fmt: skip


def lenient(facts: SubjectFacts) -> Mapping[str, CategoryDecision]:
    """Review for everything (never-disclosed categories included, to prove the plan
    overrides it), except victims or witnesses without consent; attendance and health only
    for children and the consenting."""
    out = {}
    for c in set(PUPIL_CATS) | set(NHS_CATS):
        ok = not facts.is_victim_or_witness or facts.consent
        if c in ("attendance", "health_summary"):
            ok = ok and (facts.is_child or facts.consent)
        out[c] = CategoryDecision("review" if ok else "refused", ("local/test",))
    return out


def refuse_all(facts: SubjectFacts) -> Mapping[str, CategoryDecision]:
    return {c: CategoryDecision("refused", ("default-deny",)) for c in PUPIL_CATS + NHS_CATS}


def policy_decide(requester: str, categories: list[str]) -> Any:
    engine = Engine.load()
    register = load_register(DEFAULT_REGISTER_PATH)
    facts = RequestFacts(requester, "st-marys-primary", "prevention_detection_of_crime",
                         "dpa2018_sch2_p1_para2_crime", (), "theft_act_1968_s1", False, (),
                         tuple(categories))  # fmt: skip
    return lambda f: engine.decide_facts(facts, [f], register).categories


# ----- the oracle: the expected output, computed with pyarrow, not SQL ----------------------


def text(col: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.cast(col, pa.string())


def oracle(plan: EgressPlan, table: pa.Table) -> pa.Table:
    code = pa.array([0] * table.num_rows, pa.int64())
    for fact, src in plan.mapping.facts:
        weight = {"is_child": 4, "is_victim_or_witness": 2, "consent": 1}[fact]
        if isinstance(src, bool):
            code = pc.add(code, weight * src)
            continue
        value = pc.utf8_lower(pc.utf8_trim(text(table[src]), " "))
        words = TRUE_WORDS if fact == "consent" else FALSE_WORDS
        hit = pc.fill_null(pc.is_in(value, value_set=pa.array(words)), False)
        on = hit if fact == "consent" else pc.invert(hit)
        code = pc.add(code, pc.multiply(pc.cast(on, pa.int64()), weight))
    keep = pc.is_in(code, value_set=pa.array(plan.receiving, pa.int64()))
    cols = {}
    for c in plan.output_columns:
        allowed = pc.is_in(code, value_set=pa.array(plan.groups_for(c), pa.int64()))
        cols[c] = pc.if_else(allowed, text(table[c]), pa.scalar(None, pa.string()))
    return normal(pa.table(cols).filter(keep))


def normal(table: pa.Table) -> pa.Table:
    """Nullable text columns (engines differ only in whether they mark a column NOT NULL)."""
    return table.cast(pa.schema([pa.field(n, pa.string()) for n in table.column_names]))


def read_out(path: Path) -> pa.Table:
    if path.suffix == ".csv":
        import duckdb

        from carewall.egress.files import duckdb_file_relation

        con = duckdb.connect()
        rel = duckdb_file_relation(Source.csv(path)).sql("duckdb")
        return normal(con.sql(f"SELECT * FROM {rel}").to_arrow_table())
    return normal(pq.read_table(path))


def check_output(plan: EgressPlan, result: Any, expected: pa.Table) -> pa.Table:
    assert result.path is not None and result.path.is_file()
    got = read_out(result.path)
    assert got.column_names == list(plan.output_columns)
    assert not FORBIDDEN & set(got.column_names)
    assert got.num_rows == result.rows == expected.num_rows
    assert got.equals(expected)
    return got


# ----- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("egress")
    write_file("pupils", ROWS, d / "pupils.parquet")
    write_file("pupils", ROWS, d / "pupils.csv")
    write_file("nhs", ROWS, d / "nhs.parquet")
    return d


@pytest.fixture(scope="module")
def pg_nhs() -> Iterator[str]:
    with pg_database("carewall_egress") as url:
        write_postgres("nhs", ROWS, url)
        yield url


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    pytest.importorskip("pyspark")
    from carewall.egress.spark import spark_session

    session = spark_session()
    yield session
    session.stop()


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path


def pupils_plan(decide: Any = lenient) -> EgressPlan:
    return build_plan(load_mapping(MAPPINGS["pupils"]), PUPIL_CATS, decide)


# ----- DuckDB ----------------------------------------------------------------------------


def test_duckdb_parquet_and_csv_match_the_oracle(data: Path, out: Path) -> None:
    plan = pupils_plan()
    source = Source.parquet(data / "pupils.parquet")
    expected = oracle(plan, pq.read_table(data / "pupils.parquet"))
    counts = count_groups(source, plan.mapping)
    assert sum(counts.values()) == ROWS and all(counts[g] for g in GROUPS)
    result = run(plan, source, out / "p.parquet")
    check_output(plan, result, expected)
    assert result.counts == counts and result.left_out == ROWS - expected.num_rows > 0
    # one row group per source row group (engines.aligned_row_groups)
    groups = pq.read_metadata(data / "pupils.parquet").num_row_groups
    assert pq.read_metadata(result.path).num_row_groups == groups > 1
    assert len(result.sha256 or "") == 64 and result.bytes == (out / "p.parquet").stat().st_size
    assert dry_run(plan, counts).rows_out == result.rows
    # the CSV extract holds the same text: the same rows, in the same order
    result = run(plan, Source.csv(data / "pupils.csv"), out / "c.csv", fmt="csv")
    check_output(plan, result, expected)
    assert sorted(p.name for p in out.iterdir()) == ["c.csv", "p.parquet"]  # no leftovers


def test_unmapped_flag_and_forbidden_columns_never_leave(data: Path, out: Path) -> None:
    plan = pupils_plan()
    assert {"nationality", "country_of_birth"} <= {c for c, _ in plan.mapping.columns}
    result = run(plan, Source.parquet(data / "pupils.parquet"), out / "p.parquet")
    names = set(pq.read_schema(result.path).names)
    assert names == {"forename", "surname", "address", "postcode", "date_of_birth",
                     "attendance_pct"}  # fmt: skip
    for never in ("staff_notes", "under_18", "victim_flag", "consent_recorded", "pupil_id",
                  "nationality", "country_of_birth", "sen_status"):  # fmt: skip
        assert never not in names


def test_sqlite_source_matches(data: Path, out: Path) -> None:
    n = 200_000
    write_sqlite("pupils", n, out / "p.db")
    write_file("pupils", n, out / "small.parquet")
    plan = pupils_plan()
    expected = oracle(plan, pq.read_table(out / "small.parquet"))
    source = Source.sqlite(out / "p.db", "pupils")
    assert source_columns(source) == tuple(pq.read_schema(out / "small.parquet").names)
    check_output(plan, run(plan, source, out / "s.parquet"), expected)


def test_hostile_column_names(out: Path) -> None:
    hostile = 'a"; DROP TABLE x; --'
    table = pa.table({"ref": ["1", "2"], hostile: ["n1", "n2"], "kid": ["no", "yes"],
                      "v": ["no", None], "c": ["y", "n"]})  # fmt: skip
    pq.write_table(table, out / "h.parquet")
    mapping = load_mapping(
        f"subject_ref = 'ref'\n[columns]\n'{hostile}' = 'name'\n"
        "[facts]\nis_child = 'kid'\nis_victim_or_witness = 'v'\nconsent = 'c'\n"
    )
    plan = build_plan(mapping, ["name"], lenient)
    result = run(plan, Source.parquet(out / "h.parquet"), out / "o.parquet")
    assert pq.read_table(result.path).to_pydict() == {hostile: ["n1"]}  # row 2: victim, no consent


# ----- refusals: no output at all -------------------------------------------------------


def test_immigration_enforcement_request_writes_nothing(data: Path, out: Path) -> None:
    plan = pupils_plan(policy_decide("home-office-ie", PUPIL_CATS))
    assert plan.empty
    for g in plan.groups:
        assert all(d.outcome == "refused" for d in g.decisions.values())
        assert "pledge/no-immigration-recipient" in g.decisions["address"].rules
    for src, fmt in ((Source.parquet(data / "pupils.parquet"), "parquet"),
                     (Source.csv(data / "pupils.csv"), "csv")):  # fmt: skip
        result = run(plan, src, out / f"o.{fmt}", fmt=fmt)  # type: ignore[arg-type]
        assert result.path is None and result.sha256 is None and result.rows == 0
    assert list(out.iterdir()) == []


def test_refuse_everything_writes_nothing(data: Path, out: Path) -> None:
    result = run(pupils_plan(refuse_all), Source.parquet(data / "pupils.parquet"), out / "o")
    assert result.path is None and list(out.iterdir()) == []


def test_no_row_of_a_receiving_group_writes_nothing(out: Path) -> None:
    pq.write_table(pa.table({"ref": ["1"], "n": ["x"], "kid": ["y"], "v": ["y"], "c": ["n"]}),
                   out / "v.parquet")  # fmt: skip
    mapping = load_mapping(
        "subject_ref = 'ref'\n[columns]\nn = 'name'\n[facts]\n"
        "is_child = 'kid'\nis_victim_or_witness = 'v'\nconsent = 'c'\n"
    )
    plan = build_plan(mapping, ["name"], lenient)
    assert not plan.empty
    result = run(plan, Source.parquet(out / "v.parquet"), out / "o.parquet")
    assert result.path is None and result.left_out == 1
    assert [p.name for p in out.iterdir()] == ["v.parquet"]


def test_police_request_under_the_real_policy(data: Path, out: Path) -> None:
    cats = ["name", "address", "date_of_birth", "attendance", "nationality"]
    plan = pupils_plan(policy_decide("met-police", cats))
    assert plan.output_columns == ("forename", "surname", "address", "postcode", "date_of_birth")
    assert plan.receiving == (0, 1, 3, 4, 5, 7)  # victims or witnesses without consent: out
    expected = oracle(plan, pq.read_table(data / "pupils.parquet"))
    check_output(plan, run(plan, Source.parquet(data / "pupils.parquet"), out / "o.parquet"),
                 expected)  # fmt: skip


def test_refusals_of_bad_runs(data: Path, out: Path) -> None:
    plan = pupils_plan()
    (out / "exists.parquet").write_bytes(b"x")
    with pytest.raises(InputError, match="already exists"):
        run(plan, Source.parquet(data / "pupils.parquet"), out / "exists.parquet")
    with pytest.raises(InputError, match="PostgreSQL"):
        run(plan, Source.parquet(data / "pupils.parquet"), out / "o", engine="postgres")
    with pytest.raises(InputError, match="no column"):
        run(plan, Source.parquet(data / "nhs.parquet"), out / "o")
    assert [p.name for p in out.iterdir()] == ["exists.parquet"]


# ----- PostgreSQL -------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_engine_and_duckdb_over_postgres_match(data: Path, pg_nhs: str, out: Path) -> None:
    plan = build_plan(load_mapping(MAPPINGS["nhs"]), NHS_CATS, lenient)
    assert "immigration_status" not in plan.output_columns
    expected = oracle(plan, pq.read_table(data / "nhs.parquet"))
    duck = run(plan, Source.parquet(data / "nhs.parquet"), out / "duck.parquet")
    check_output(plan, duck, expected)
    table = Source.postgres(pg_nhs, "nhs")
    assert count_groups(table, plan.mapping, engine="postgres") == duck.counts
    check_output(plan, run(plan, table, out / "pg.parquet", engine="postgres"), expected)
    check_output(plan, run(plan, table, out / "pg.csv", engine="postgres", fmt="csv"), expected)
    check_output(plan, run(plan, table, out / "pgduck.parquet"), expected)


@pytest.mark.postgres
def test_postgres_refusal_writes_nothing(pg_nhs: str, out: Path) -> None:
    plan = build_plan(load_mapping(MAPPINGS["nhs"]), NHS_CATS, refuse_all)
    result = run(plan, Source.postgres(pg_nhs, "nhs"), out / "o.parquet", engine="postgres")
    assert result.path is None and list(out.iterdir()) == []


@pytest.mark.postgres
def test_postgres_hostile_names(pg_url: str, out: Path) -> None:
    import psycopg

    hostile = 'a"; DROP TABLE x; --'
    with psycopg.connect(pg_url) as con:
        con.execute("CREATE TABLE x (k int)")
        quoted = hostile.replace('"', '""')
        con.execute(f'CREATE TABLE "t""x" (ref text, "{quoted}" text, kid boolean, v boolean, '
                    "c text)")  # fmt: skip
        con.execute('INSERT INTO "t""x" VALUES '
                    "('1', 'n1', false, false, 'y'), ('2', 'n2', true, true, NULL)")  # fmt: skip
    mapping = load_mapping(
        f"subject_ref = 'ref'\n[columns]\n'{hostile}' = 'name'\n"
        "[facts]\nis_child = 'kid'\nis_victim_or_witness = 'v'\nconsent = 'c'\n"
    )
    plan = build_plan(mapping, ["name"], lenient)
    result = run(plan, Source.postgres(pg_url, 't"x'), out / "o.parquet", engine="postgres")
    assert pq.read_table(result.path).to_pydict() == {hostile: ["n1"]}
    with psycopg.connect(pg_url) as con:
        assert con.execute("SELECT count(*) FROM x").fetchone() == (0,)


# ----- Spark ---------------------------------------------------------------------------


def test_spark_matches_duckdb_row_for_row(data: Path, spark: Any, out: Path) -> None:
    plan = pupils_plan()
    expected = oracle(plan, pq.read_table(data / "pupils.parquet"))
    parquet = Source.parquet(data / "pupils.parquet")
    assert count_groups(parquet, plan.mapping, engine="spark") == count_groups(
        parquet, plan.mapping
    )
    check_output(plan, run(plan, parquet, out / "s.parquet", engine="spark"), expected)
    csv = Source.csv(data / "pupils.csv")
    check_output(plan, run(plan, csv, out / "s.csv", engine="spark", fmt="csv"), expected)
    assert sorted(p.name for p in out.iterdir()) == ["s.csv", "s.parquet"]


def test_spark_nhs_and_refusal(data: Path, spark: Any, out: Path) -> None:
    plan = build_plan(load_mapping(MAPPINGS["nhs"]), NHS_CATS, lenient)
    expected = oracle(plan, pq.read_table(data / "nhs.parquet"))
    source = Source.parquet(data / "nhs.parquet")
    check_output(plan, run(plan, source, out / "s.parquet", engine="spark"), expected)
    refused = pupils_plan(policy_decide("home-office-ie", PUPIL_CATS))
    result = run(refused, Source.parquet(data / "pupils.parquet"), out / "r", engine="spark")
    assert result.path is None and [p.name for p in out.iterdir()] == ["s.parquet"]
