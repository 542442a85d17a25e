"""What a purge would change (the dry run): per table, the flagged columns whose values are
nulled or dropped, the key paths removed from JSON columns, and the rows that change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from carewall.clean import purge_json
from carewall.clean.jsonvalue import KeyPath, removal, render
from carewall.clean.report import ColumnResult, ScanReport
from carewall.clean.sources import DateRange, Source, Table, duck
from carewall.errors import InputError, ScanError

__all__ = ["Action", "PlannedColumn", "PlannedTable", "PurgePlan", "plan"]

Action = Literal["null", "drop"]


@dataclass(frozen=True)
class PlannedColumn:
    column: str
    category: str
    rule: str
    values: int  # values that would be deleted (for a key path: members removed)
    key_path: KeyPath | None = None  # a key path removed from the column's JSON values

    @property
    def label(self) -> str:
        return self.column if self.key_path is None else render(self.column, self.key_path)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"column": self.column}
        if self.key_path is not None:
            out.update({"key_path": self.label, "action": "remove_key"})
        out.update({"category": self.category, "rule": self.rule, "values": self.values})
        return out


@dataclass(frozen=True)
class PlannedTable:
    table: str
    columns: tuple[PlannedColumn, ...]
    records: int  # rows that would change

    @property
    def plain(self) -> list[PlannedColumn]:
        """The columns nulled or dropped."""
        return [c for c in self.columns if c.key_path is None]

    @property
    def keyed(self) -> list[PlannedColumn]:
        """The key paths removed from JSON columns."""
        return [c for c in self.columns if c.key_path is not None]


@dataclass(frozen=True)
class PurgePlan:
    source: str
    kind: str
    action: Action
    date_range: DateRange | None
    tables: tuple[PlannedTable, ...]
    skipped: tuple[str, ...] = ()  # files of a folder neither scanned nor purged

    @property
    def categories(self) -> list[str]:
        return sorted({c.category for t in self.tables for c in t.columns})

    @property
    def records(self) -> int:
        return sum(t.records for t in self.tables)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": {"kind": self.kind, "name": self.source},
            "action": self.action,
            "date_range": self.date_range.public() if self.date_range else None,
            "categories": self.categories,
            "records": self.records,
            "tables": [
                {"table": t.table, "records": t.records,
                 "columns": [c.to_json() for c in t.columns]}
                for t in self.tables
            ],
            "skipped": list(self.skipped),
        }  # fmt: skip


def _counts(source: Source, table: Table, columns: Sequence[str], where: DateRange | None) -> Any:
    con = duck()
    try:
        rel = source.relation(con, table, columns, where)
        any_ = " OR ".join(f"c{i} IS NOT NULL" for i in range(len(columns)))
        sql = ", ".join(f"count(c{i})" for i in range(len(columns)))
        row = con.execute(f"SELECT {sql}, count(*) FILTER (WHERE {any_}) FROM {rel}").fetchall()
        return row[0]
    finally:
        con.close()


def _split(found: Sequence[ColumnResult]) -> tuple[list[ColumnResult], list[ColumnResult]]:
    """The columns to null or drop, and the key paths to remove from JSON columns. A key
    path naming no key (values in arrays at the top of the value) makes its column one to
    null or drop: the whole value is the data. So does a column flagged itself: its key
    paths go with it."""
    plain: dict[str, ColumnResult] = {}
    keyed: list[ColumnResult] = []
    for c in found:
        if c.key_path is None or removal(c.key_path) is None:
            plain.setdefault(c.column, c)
        elif (c.column, c.key_path) not in [(k.column, k.key_path) for k in keyed]:
            keyed.append(c)
    return list(plain.values()), [c for c in keyed if c.column not in plain]


def plan(
    source: Source,
    report: ScanReport,
    *,
    action: Action = "null",
    date_range: DateRange | None = None,
) -> PurgePlan:
    """What applying would change: the flagged columns' values (and key paths) within
    ``date_range``."""
    if action not in ("null", "drop"):
        raise InputError("must be null or drop", field="--action")
    if action == "drop" and date_range is not None:
        raise InputError(
            "dropping a column deletes every value in it, not only those in a date range",
            field="--action",
            fix="use --action null with a date range, or drop without one",
        )
    by_table: dict[str, list[ColumnResult]] = {}
    for c in report.flagged:
        by_table.setdefault(c.table, []).append(c)
    tables = {t.name: t for t in source.tables()}
    planned = []
    for name, found in by_table.items():
        if name not in tables:
            raise ScanError(f"table {name!r} is gone since the scan", field="SOURCE")
        plain, keyed = _split(found)
        names = [c.column for c in plain]
        if keyed:
            got = purge_json.count(
                source, tables[name], names, [(c.column, c.key_path or ()) for c in keyed],
                date_range,
            )  # fmt: skip
            values, removed, records = got.plain, got.keyed, got.records
        else:
            row = _counts(source, tables[name], names, date_range)
            values, removed, records = [int(v) for v in row[:-1]], [], int(row[-1])
        columns = [
            *(PlannedColumn(c.column, c.category, c.rule, v)
              for c, v in zip(plain, values, strict=True)),
            *(PlannedColumn(c.column, c.category, c.rule, v, c.key_path)
              for c, v in zip(keyed, removed, strict=True)),
        ]  # fmt: skip
        planned.append(PlannedTable(name, tuple(columns), records))
    return PurgePlan(
        source.label, source.kind, action, date_range, tuple(planned), tuple(source.skipped)
    )
