"""Scan a source for columns holding personal data of the categories asked for.

Per table, the columns whose names match a rule (the candidates) are read in ONE pass: a
DuckDB ``GROUP BY GROUPING SETS`` builds each candidate's histogram of distinct values
(plus the row count), which is then joined with the rules' recognisers. A histogram of a
coded column is small, so the pass costs about as much as counting the column's non-null
values; DuckDB spills to disk rather than exceed its memory limit. The report holds counts,
never values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from carewall.clean.rules import BLANKS, Rule, RuleSet, default_rules
from carewall.clean.sources import DateRange, Source, Table, duck
from carewall.errors import ScanError

__all__ = ["ColumnResult", "ScanReport", "scan", "scan_table"]

# progress(table, rows read so far in it, done)
ScanProgress = Callable[[str, int, bool], None]


@dataclass(frozen=True)
class ColumnResult:
    """One candidate column under one rule: ``flagged`` when its values bear the rule out."""

    table: str
    column: str
    category: str
    rule: str
    rows: int  # rows scanned in the table (within the date range, if any)
    values: int  # rows holding a value (non-null) in this column
    matched: int  # of those, values a recogniser of the rule knows
    distinct: int  # distinct values seen
    flagged: bool

    @property
    def share(self) -> float:
        return self.matched / self.values if self.values else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "column": self.column,
            "category": self.category,
            "rule": self.rule,
            "rows": self.rows,
            "values": self.values,
            "matched": self.matched,
            "distinct": self.distinct,
            "share": round(self.share, 4),
            "flagged": self.flagged,
        }


@dataclass(frozen=True)
class ScanReport:
    source: str
    kind: str
    tables: int
    rows: int
    columns: tuple[ColumnResult, ...]  # every candidate, flagged or not
    rules: tuple[str, ...]
    date_range: DateRange | None = None
    categories: tuple[str, ...] = field(default=())
    # files of a folder that were not scanned (neither .csv nor .parquet): not found clean
    skipped: tuple[str, ...] = field(default=())

    @property
    def flagged(self) -> list[ColumnResult]:
        """The columns flagged, each once per category: under the first rule (in file
        order) that flags it. A column may be a candidate of two rules of one category (the
        rule naming its values, then a name-only rule): ``columns`` lists both results."""
        out: dict[tuple[str, str, str], ColumnResult] = {}
        for c in self.columns:
            if c.flagged:
                out.setdefault((c.table, c.column, c.category), c)
        return list(out.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "categories": list(self.categories),
            "rules": list(self.rules),
            "date_range": self.date_range.public() if self.date_range else None,
            "tables": self.tables,
            "rows": self.rows,
            "findings": [c.to_json() for c in self.flagged],
            "checked": [c.to_json() for c in self.columns if not c.flagged],
            "skipped": list(self.skipped),
        }


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
) -> tuple[int, list[ColumnResult]]:
    """Rows scanned and the candidate columns' results for one table (``con`` holds the
    recognisers, see :func:`scan`)."""
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
            return rows, []
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
        return rows, results
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
        total, results = 0, []
        for table in found:
            rows, cols = scan_table(con, source, table, rules, where, progress)
            total += rows
            results.extend(cols)
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
    )
