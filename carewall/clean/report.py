"""What a scan reports: counts per candidate column (or key path inside a column's JSON),
never a value."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from carewall.clean.jsonvalue import KeyPath, render
from carewall.clean.sources import DateRange

__all__ = ["ColumnResult", "JsonColumn", "ScanReport"]


@dataclass(frozen=True)
class ColumnResult:
    """One candidate column under one rule: ``flagged`` when its values bear the rule out.
    With ``key_path``, a key path inside the column's JSON values: ``values`` counts the
    values under it (each item of an array), and ``distinct`` is counted up to 1,000."""

    table: str
    column: str
    category: str
    rule: str
    rows: int  # rows scanned in the table (within the date range, if any)
    values: int  # rows holding a value (non-null) in this column
    matched: int  # of those, values a recogniser of the rule knows
    distinct: int  # distinct values seen
    flagged: bool
    key_path: KeyPath | None = None  # inside the column's JSON values, if there

    @property
    def share(self) -> float:
        return self.matched / self.values if self.values else 0.0

    @property
    def where(self) -> str:
        """The column, or the key path inside it (``demographics.nationality``)."""
        return self.column if self.key_path is None else render(self.column, self.key_path)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"table": self.table, "column": self.column}
        if self.key_path is not None:
            out["key_path"] = self.where
        out.update(
            {
                "category": self.category,
                "rule": self.rule,
                "rows": self.rows,
                "values": self.values,
                "matched": self.matched,
                "distinct": self.distinct,
                "share": round(self.share, 4),
                "flagged": self.flagged,
            }
        )
        return out


@dataclass(frozen=True)
class JsonColumn:
    """A column whose values the scan read as JSON (see :mod:`carewall.clean.jsonscan`)."""

    table: str
    column: str
    values: int  # non-null values
    json: int  # of those, read as JSON objects or arrays
    unread: int  # not blank, and not read: malformed, a bare scalar, too long or too deep
    cut: int  # read only in part: nested deeper, or with more members, than the limits
    paths: int  # distinct key paths holding values

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "column": self.column,
            "values": self.values,
            "json": self.json,
            "unread": self.unread,
            "cut": self.cut,
            "key_paths": self.paths,
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
    # columns whose values were read as JSON, key paths and all
    json_columns: tuple[JsonColumn, ...] = field(default=())

    @property
    def flagged(self) -> list[ColumnResult]:
        """The columns (and key paths) flagged, each once per category: under the first rule
        (in file order) that flags it. A column may be a candidate of two rules of one
        category (the rule naming its values, then a name-only rule): ``columns`` lists
        both results."""
        out: dict[tuple[str, str, KeyPath | None, str], ColumnResult] = {}
        for c in self.columns:
            if c.flagged:
                out.setdefault((c.table, c.column, c.key_path, c.category), c)
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
            "json_columns": [j.to_json() for j in self.json_columns],
            "skipped": list(self.skipped),
        }
