"""The public statistics document: its figures and tables, and its JSON and CSV forms.

:class:`Statistics` is what :class:`carewall.statistics.Tally` counts from the log's
entries (see that module for what each figure means); ``/statistics.json`` and
``/statistics.csv`` serve it, and the auditor reads the published one back strictly
(:meth:`Statistics.from_json`) to compare it with its own count.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from carewall.ids import is_id

__all__ = [
    "AGREEMENT_FIGURES",
    "DIMENSIONS",
    "FIGURES",
    "MONTH",
    "OUTCOMES",
    "VERSION",
    "Row",
    "Statistics",
    "StatisticsError",
    "count",
]

VERSION: Final = 1
DIMENSIONS: Final = ("requester_function", "holder", "purpose", "legal_basis", "outcome", "month")
OUTCOMES: Final = (
    "released",
    "refused_by_reviewer",
    "refused_automatically",
    "withdrawn",
    "awaiting_review",
    "awaiting_decision",
)
FIGURES: Final = (
    "received",
    "refused",
    "released",
    "releases",
    "releases_to_immigration_enforcement",
)
AGREEMENT_FIGURES: Final = (
    "registered",
    "refused",
    "withdrawn",
    "destruction_requested",
    "destroyed",
    "destruction_overdue",
    "ended_not_withdrawn",
)
MONTH: Final = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])", re.ASCII)

Row = tuple[str, int]


class StatisticsError(ValueError):
    """An entry or a statistics document that cannot be read; the message names fields only."""


def count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StatisticsError(f"{where} is not a whole number ≥ 0")
    return value


@dataclass(frozen=True)
class Statistics:
    """The statistics of one log up to one size: the firewall statement and the tables."""

    origin: str
    size: int
    received: int
    refused: int
    released: int
    releases: int
    releases_to_immigration_enforcement: int
    tables: tuple[tuple[str, tuple[Row, ...]], ...]  # (dimension, rows) in DIMENSIONS order
    agreements: tuple[Row, ...] = tuple((f, 0) for f in AGREEMENT_FIGURES)

    def table(self, dimension: str) -> tuple[Row, ...]:
        """The rows of one table (KeyError for a dimension not in DIMENSIONS)."""
        return dict(self.tables)[dimension]

    def figures(self) -> tuple[Row, ...]:
        """The firewall statement, in FIGURES order."""
        return tuple((f, int(getattr(self, f))) for f in FIGURES)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "origin": self.origin,
            "size": self.size,
            "firewall": dict(self.figures()),
            "tables": {d: [{"key": k, "count": n} for k, n in rows] for d, rows in self.tables},
            "agreements": dict(self.agreements),
        }

    def to_csv(self) -> str:
        """``origin,size,dimension,key,count``: the firewall figures, then every table row."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["origin", "size", "dimension", "key", "count"])
        # A cell starting with = + - @ would be a formula in a spreadsheet (OWASP CSV injection).
        origin = "'" + self.origin if self.origin[:1] in ("=", "+", "-", "@") else self.origin
        for name, n in self.figures():
            writer.writerow([origin, self.size, "firewall", name, n])
        for d, rows in self.tables:
            writer.writerows([origin, self.size, d, k, n] for k, n in rows)
        writer.writerows([origin, self.size, "agreements", k, n] for k, n in self.agreements)
        return out.getvalue()

    @classmethod
    def from_json(cls, obj: Any) -> Statistics:
        """Read a document written by :meth:`to_json`, strictly (StatisticsError naming the
        field): exact keys, counts ≥ 0, and every key an id of its table's kind."""
        doc = _object(
            obj, "the document", ("v", "origin", "size", "firewall", "tables", "agreements")
        )
        if count(doc["v"], "field 'v'") != VERSION:
            raise StatisticsError(f"field 'v' is not {VERSION}")
        if not isinstance(doc["origin"], str):
            raise StatisticsError("field 'origin' is not a string")
        firewall = _object(doc["firewall"], "field 'firewall'", FIGURES)
        figures = {f: count(firewall[f], f"field 'firewall.{f}'") for f in FIGURES}
        tables = _object(doc["tables"], "field 'tables'", DIMENSIONS)
        agreed = _object(doc["agreements"], "field 'agreements'", AGREEMENT_FIGURES)
        return cls(
            origin=doc["origin"],
            size=count(doc["size"], "field 'size'"),
            **figures,
            tables=tuple((d, _rows(tables[d], d)) for d in DIMENSIONS),
            agreements=tuple(
                (f, count(agreed[f], f"field 'agreements.{f}'")) for f in AGREEMENT_FIGURES
            ),
        )


def _object(obj: Any, what: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping) or set(obj) != set(keys):
        raise StatisticsError(f"{what} is not an object with exactly: {', '.join(keys)}")
    return obj


def _key_ok(dimension: str, key: object) -> bool:
    if dimension == "outcome":
        return key in OUTCOMES
    if dimension == "month":
        return isinstance(key, str) and key.isascii() and MONTH.fullmatch(key) is not None
    return is_id(key, "organisation" if dimension == "holder" else "vocab")


def _rows(rows: Any, dimension: str) -> tuple[Row, ...]:
    where = f"field 'tables.{dimension}'"
    if not isinstance(rows, list):
        raise StatisticsError(f"{where} is not a list")
    out: list[Row] = []
    for i, item in enumerate(rows):
        row = _object(item, f"{where}[{i}]", ("key", "count"))
        if not _key_ok(dimension, row["key"]):
            raise StatisticsError(f"{where}[{i}].key is not a {dimension} id")
        out.append((row["key"], count(row["count"], f"{where}[{i}].count")))
    if len({k for k, _ in out}) != len(out):
        raise StatisticsError(f"{where} lists a key twice")
    return tuple(out)
