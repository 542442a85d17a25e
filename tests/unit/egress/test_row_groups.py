"""Row groups of a filtered Parquet extract: one per source row group, the rows unchanged."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from egress_helpers import decide

from carewall.egress import Source, build_plan, load_mapping, run
from carewall.egress.engines import ROW_GROUP_ROWS, VECTOR_ROWS, aligned_row_groups
from carewall.egress.synthetic import MAPPINGS, write_file

FULL = ROW_GROUP_ROWS


def test_aligned_size_covers_the_expected_batch() -> None:
    rows = aligned_row_groups([FULL] * 9 + [1000], kept=86, total=100)
    expected = -(-FULL * 86 // 100)
    assert rows == expected + VECTOR_ROWS // 2
    # DuckDB writes a batch as it is when it holds between rows - 2047 and rows rows
    assert rows - (VECTOR_ROWS - 1) <= expected - 1000 and expected + 1000 <= rows


def test_default_row_groups_when_alignment_does_not_apply() -> None:
    assert aligned_row_groups([FULL] * 4, kept=100, total=100) is None  # nothing left out
    assert aligned_row_groups([FULL] * 4, kept=0, total=100) is None  # nothing written
    assert aligned_row_groups([FULL], kept=50, total=100) is None  # one batch only
    assert aligned_row_groups([FULL, 500, FULL], kept=50, total=100) is None  # uneven
    assert aligned_row_groups([FULL, FULL + 1], kept=50, total=100) is None
    assert aligned_row_groups([FULL] * 4, kept=30, total=100) is None  # under half the default
    assert aligned_row_groups([1_000_000] * 3, kept=50, total=100) is None  # over the default


def test_each_source_row_group_is_one_output_row_group(tmp_path: Path) -> None:
    src = write_file("pupils", 3 * FULL + 500, tmp_path / "p.parquet")
    plan = build_plan(load_mapping(MAPPINGS["pupils"]), ["name", "address", "attendance"], decide)
    source_groups = pq.read_metadata(src).num_row_groups
    assert source_groups == 4
    aligned = run(plan, Source.parquet(src), tmp_path / "a.parquet")
    assert aligned.path is not None and aligned.left_out > 0
    assert pq.read_metadata(aligned.path).num_row_groups == source_groups
    # the same rows as a CSV extract of the same source (no row-group setting there)
    as_csv = run(plan, Source.parquet(src), tmp_path / "a.csv", fmt="csv")
    assert as_csv.counts == aligned.counts
    assert as_csv.path is not None
    con = duckdb.connect()
    try:
        parquet = con.execute("SELECT * FROM read_parquet(?)", [str(aligned.path)]).fetchall()
        text = con.execute(
            "SELECT * FROM read_csv(?, header = true, all_varchar = true)", [str(as_csv.path)]
        ).fetchall()
    finally:
        con.close()
    assert len(parquet) == aligned.rows
    assert [tuple(None if v is None else str(v) for v in row) for row in parquet] == text
