"""The dry run: before anything is written, what would go, per column and per group, and why.

Pure: built from a plan and the rows per group (:func:`~carewall.egress.engines.count_groups`).
Shown as JSON (:meth:`DryRun.to_json`) or as Rich tables (:func:`render_dry_run`). It
names columns, categories, rule ids and counts, never a row's value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from carewall.egress.plan import GROUPS, ColumnVerdict, EgressPlan, group_label
from carewall.policy.facts import SubjectFacts

__all__ = ["ColumnRow", "DryRun", "GroupRow", "dry_run", "render_dry_run"]


@dataclass(frozen=True)
class GroupRow:
    facts: SubjectFacts
    rows: int
    columns: tuple[str, ...]  # what its rows would carry

    @property
    def receives(self) -> bool:
        return bool(self.columns)


@dataclass(frozen=True)
class ColumnRow:
    column: str
    category: str | None  # None: not mapped (unmapped, fact column or subject reference)
    verdicts: tuple[ColumnVerdict, ...]  # one per group, in GROUPS order


@dataclass(frozen=True)
class DryRun:
    categories: tuple[str, ...]
    output_columns: tuple[str, ...]
    groups: tuple[GroupRow, ...]
    columns: tuple[ColumnRow, ...]

    @property
    def rows_out(self) -> int:
        return sum(g.rows for g in self.groups if g.receives)

    @property
    def rows_left_out(self) -> int:
        return sum(g.rows for g in self.groups if not g.receives)

    def to_json(self) -> dict[str, Any]:
        return {
            "categories": list(self.categories),
            "output_columns": list(self.output_columns),
            "rows_out": self.rows_out,
            "rows_left_out": self.rows_left_out,
            "groups": [
                {
                    "facts": g.facts.to_json(),
                    "rows": g.rows,
                    "receives": g.receives,
                    "columns": list(g.columns),
                }
                for g in self.groups
            ],
            "columns": [
                {
                    "column": c.column,
                    "category": c.category,
                    "groups": [
                        {"facts": f.to_json(), **v.to_json()}
                        for f, v in zip(GROUPS, c.verdicts, strict=True)
                    ],
                }
                for c in self.columns
            ],
        }


def dry_run(plan: EgressPlan, counts: Mapping[SubjectFacts, int]) -> DryRun:
    """What :func:`~carewall.egress.engines.run` would write for these rows per group."""
    category = plan.mapping.category_of
    order = list(plan.source_columns or ()) + [c for c in plan.verdicts if c not in category]
    names = list(dict.fromkeys([c for c, _ in plan.mapping.columns] + order))
    return DryRun(
        plan.categories,
        plan.output_columns,
        tuple(GroupRow(g.facts, int(counts.get(g.facts, 0)), g.columns) for g in plan.groups),
        tuple(ColumnRow(c, category.get(c), tuple(plan.verdicts[c])) for c in names),
    )


def _cell(v: ColumnVerdict) -> Text:
    text = Text("go" if v.goes else "no: " + v.reason, style="green" if v.goes else "red")
    if v.rules:
        text.append("\n" + ", ".join(v.rules), style="dim")
    return text


def render_dry_run(dry: DryRun, *, all_groups: bool = False) -> Group:
    """Two tables: groups (rows, kept or left out) and columns by group (go or not, why).

    The column table shows the groups that hold rows (every group with ``all_groups``).
    """
    groups = Table(title="Rows by group of subject facts", title_justify="left")
    for name in ("group", "rows", "written", "columns"):
        groups.add_column(name, justify="right" if name == "rows" else "left")
    for g in dry.groups:
        groups.add_row(
            group_label(g.facts),
            f"{g.rows:,}",
            Text("yes", style="green") if g.receives else Text("left out", style="red"),
            str(len(g.columns)),
        )
    groups.caption = f"{dry.rows_out:,} rows would be written, {dry.rows_left_out:,} left out"

    shown = [i for i, g in enumerate(dry.groups) if all_groups or g.rows] or list(range(8))
    columns = Table(title="Columns by group", title_justify="left", show_lines=True)
    columns.add_column("column")
    columns.add_column("category")
    for i in shown:
        columns.add_column(group_label(dry.groups[i].facts).replace(", ", "\n"), overflow="fold")
    for c in dry.columns:
        columns.add_row(Text(c.column), c.category or "-", *(_cell(c.verdicts[i]) for i in shown))
    return Group(groups, columns)
