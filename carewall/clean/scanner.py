"""Scan a source for columns holding personal data of the categories asked for.

Per table, the columns whose names match a rule (the candidates) are read in ONE pass: a
DuckDB ``GROUP BY GROUPING SETS`` builds each candidate's histogram of distinct values
(plus the row count), which is then joined with the rules' recognisers. A histogram of a
coded column is small, so the pass costs about as much as counting the column's non-null
values; DuckDB spills to disk rather than exceed its memory limit. Columns holding JSON are
then looked into, key path by key path (:mod:`carewall.clean.jsonscan`). The report holds
counts, never values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import duckdb

from carewall.clean.jsonscan import scan_json
from carewall.clean.report import ColumnResult, JsonColumn, ScanReport
from carewall.clean.rules import BLANKS, Rule, RuleSet, default_rules
from carewall.clean.sources import DateRange, Source, Table, duck
from carewall.errors import ScanError

__all__ = ["ColumnResult", "JsonColumn", "ScanReport", "scan", "scan_table"]

# progress(table, rows read so far in it, done)
ScanProgress = Callable[[str, int, bool], None]


def _recogniser_table(con: duckdb.DuckDBPyConnection, rules: RuleSet) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE cw_recognised (recogniser VARCHAR, value VARCHAR)")
    rows = [(name, v) for name, values in rules.recognisers.items() for v in values]
    # One INSERT of two parallel lists, unnested side by side into the same (recogniser,
    # value) rows. Not ``executemany``: DuckDB runs that as one statement per row, about
    # 0.2 ms each, and the shipped rules hold some 1,500 values, so it cost more than the
    # histogram pass over 10 million Parquet rows. This also accepts an empty rule set.
    con.execute(
        "INSERT INTO cw_recognised SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
        [[name for name, _ in rows], [v for _, v in rows]],
    )


def scan_table(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    table: Table,
    rules: RuleSet,
    where: DateRange | None = None,
    progress: ScanProgress | None = None,
) -> tuple[int, list[ColumnResult], list[JsonColumn]]:
    """Rows scanned, the candidate columns' (and JSON key paths') results for one table, and
    the columns read as JSON (``con`` holds the recognisers, see :func:`scan`)."""
    pairs: list[tuple[str, Rule]] = [(c, r) for c in table.columns for r in rules.candidates(c)]
    columns = list(dict.fromkeys(c for c, _ in pairs))
    read = 0

    def tick(n: int) -> None:
        nonlocal read
        read += n
        if progress is not None:
            progress(table.name, read, False)

    rel = source.relation(con, table, columns, where, tick)
    try:
        if not columns:
            rows = int(con.execute(f"SELECT count(*) FROM {rel}").fetchall()[0][0])
            return rows, *scan_json(con, source, table, rules, where, rows)
        sets = ", ".join(f"(c{i})" for i in range(len(columns)))
        which = " ".join(f"WHEN grouping(c{i}) = 0 THEN {i}" for i in range(len(columns)))
        value = f"coalesce({', '.join(f'c{i}' for i in range(len(columns)))})"
        con.execute(
            "CREATE OR REPLACE TEMP TABLE cw_hist AS "
            f"SELECT CASE {which} ELSE -1 END AS col, {value} AS value, count(*) AS n "
            f"FROM {rel} GROUP BY GROUPING SETS ({sets}, ())"
        )
        stats = con.execute(
            "SELECT col, sum(n) FILTER (WHERE value IS NOT NULL), "
            "count(value), sum(n) FROM cw_hist GROUP BY col"
        ).fetchall()
        totals = {int(c): (int(v or 0), int(d)) for c, v, d, _ in stats if c >= 0}
        rows = next((int(n) for c, _, _, n in stats if c < 0), 0)
        results = []
        for column, rule in pairs:
            i = columns.index(column)
            got = con.execute(
                "SELECT coalesce(sum(n), 0) FROM cw_hist WHERE col = ? "
                "AND upper(trim(value, ?)) IN "
                "(SELECT value FROM cw_recognised WHERE list_contains(?, recogniser))",
                [i, BLANKS, list(rule.values)],
            ).fetchall()
            matched = int(got[0][0])
            values, distinct = totals.get(i, (0, 0))
            results.append(
                ColumnResult(
                    table.name,
                    column,
                    rule.category,
                    rule.id,
                    rows,
                    values,
                    matched,
                    distinct,
                    rule.holds(values, matched),
                )
            )
        inside, json_cols = scan_json(con, source, table, rules, where, rows)
        return rows, results + inside, json_cols
    except duckdb.Error as e:
        raise ScanError(
            f"scanning table {table.name!r} failed ({type(e).__name__})",
            field="SOURCE",
            fix="check the source is readable; nothing was changed",
        ) from e
    finally:
        if not rel.startswith("("):
            con.unregister(rel)
        if progress is not None:
            progress(table.name, read, True)


def scan(
    source: Source,
    rules: RuleSet | None = None,
    *,
    categories: Iterable[str] | None = None,
    tables: Sequence[str] | None = None,
    where: DateRange | None = None,
    progress: ScanProgress | None = None,
) -> ScanReport:
    """Scan every table of ``source`` (or those named in ``tables``) with ``rules``."""
    rules = rules or default_rules()
    if categories is not None:
        rules = rules.only(categories)
    found = source.tables()
    if tables:
        missing = sorted(set(tables) - {t.name for t in found})
        if missing:
            raise ScanError(
                f"the source has no table {missing[0]!r}",
                field="--table",
                fix="name tables as `carewall scan` lists them",
            )
        found = [t for t in found if t.name in set(tables)]
    con = duck()
    try:
        _recogniser_table(con, rules)
        total, results, read = 0, [], []
        for table in found:
            rows, cols, json_cols = scan_table(con, source, table, rules, where, progress)
            total += rows
            results.extend(cols)
            read.extend(json_cols)
    finally:
        con.close()
    return ScanReport(
        source=source.label,
        kind=source.kind,
        tables=len(found),
        rows=total,
        columns=tuple(results),
        rules=tuple(r.id for r in rules.rules),
        date_range=where,
        categories=rules.categories,
        skipped=source.skipped,
        json_columns=tuple(read),
    )
