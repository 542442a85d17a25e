"""The egress plan: for each of the 8 combinations of subject facts, which columns may go.

Pure data, built once per request: ``decide`` is asked once per combination (a row's
*group*), and its answer for each requested category is applied to the columns mapped to
that category. A column goes to a group only when all of these hold:

- it is mapped (an unmapped column never goes: fail closed);
- its category is one the request asked for;
- its category is not never-disclosed (:data:`~carewall.clean.rules.NEVER_DISCLOSED`),
  whatever ``decide`` says;
- ``decide`` gave the category the outcome ``review`` for that group (a missing answer is a
  refusal, named ``no-decision``).

Rows of a group that may receive no column are left out of the output altogether.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any, Final, Literal

from carewall.clean.rules import NEVER_DISCLOSED
from carewall.egress.mapping import EgressMapping, shown_name
from carewall.errors import InputError
from carewall.policy.decision import NO_DECISION, CategoryDecision
from carewall.policy.facts import SubjectFacts
from carewall.vocab import vocabulary

__all__ = [
    "GROUPS",
    "NEVER_RULE",
    "WEIGHTS",
    "ColumnVerdict",
    "Decide",
    "EgressPlan",
    "GroupPlan",
    "Reason",
    "SourceColumns",
    "build_plan",
    "check_source_columns",
    "group_code",
    "group_label",
]

Decide = Callable[[SubjectFacts], Mapping[str, CategoryDecision]]
Reason = Literal[
    "permitted",
    "refused",
    "not requested",
    "never disclosed",
    "unmapped",
    "subject reference",
    "fact column",
]
NEVER_RULE: Final = "pledge/never-nationality"

# Every combination, in SubjectFacts order; a group's code is its index here.
GROUPS: Final = tuple(SubjectFacts(c, v, k) for c, v, k in product((False, True), repeat=3))


# Each fact's weight in a group's code (the SQL and the flag decoder build the same sum).
WEIGHTS: Final = {"is_child": 4, "is_victim_or_witness": 2, "consent": 1}


def group_code(facts: SubjectFacts) -> int:
    """0..7: ``4·is_child + 2·is_victim_or_witness + consent`` (the SQL computes the same)."""
    return 4 * facts.is_child + 2 * facts.is_victim_or_witness + facts.consent


def group_label(facts: SubjectFacts) -> str:
    """A short human name: ``child, victim/witness, consent`` or ``adult, -, no consent``."""
    return ", ".join(
        (
            "child" if facts.is_child else "adult",
            "victim/witness" if facts.is_victim_or_witness else "not victim/witness",
            "consent" if facts.consent else "no consent",
        )
    )


@dataclass(frozen=True)
class ColumnVerdict:
    """Whether one column goes to one group, and why (``rules``: the deciding rule ids)."""

    goes: bool
    reason: Reason
    rules: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"goes": self.goes, "reason": self.reason, "rules": list(self.rules)}


@dataclass(frozen=True)
class GroupPlan:
    facts: SubjectFacts
    columns: tuple[str, ...]  # the columns this group's rows may carry, in output order
    decisions: Mapping[str, CategoryDecision]  # per requested category

    @property
    def code(self) -> int:
        return group_code(self.facts)

    @property
    def receives(self) -> bool:
        return bool(self.columns)


@dataclass(frozen=True)
class EgressPlan:
    """What goes where. ``verdicts[column][code]`` covers every mapped column (and, when the
    source's columns were given, every other source column too)."""

    mapping: EgressMapping
    categories: tuple[str, ...]
    groups: tuple[GroupPlan, ...]  # all 8, indexed by group code
    verdicts: Mapping[str, tuple[ColumnVerdict, ...]]
    source_columns: tuple[str, ...] | None = None

    @property
    def output_columns(self) -> tuple[str, ...]:
        """The union of the columns any group may receive, in mapping order."""
        allowed = {c for g in self.groups for c in g.columns}
        return tuple(c for c, _ in self.mapping.columns if c in allowed)

    @property
    def receiving(self) -> tuple[int, ...]:
        """Codes of the groups whose rows are written."""
        return tuple(g.code for g in self.groups if g.receives)

    @property
    def empty(self) -> bool:
        """True when no row may carry anything: nothing is read and no file is written."""
        return not self.receiving

    def groups_for(self, column: str) -> tuple[int, ...]:
        return tuple(g.code for g in self.groups if column in g.columns)

    def to_json(self) -> dict[str, Any]:
        return {
            "categories": list(self.categories),
            "output_columns": list(self.output_columns),
            "groups": [
                {
                    "facts": g.facts.to_json(),
                    "columns": list(g.columns),
                    "decisions": {c: d.to_json() for c, d in g.decisions.items()},
                }
                for g in self.groups
            ],
            "columns": {col: [v.to_json() for v in vs] for col, vs in self.verdicts.items()},
        }


class SourceColumns(tuple[str, ...]):
    """A source's column names, in its order (a plain tuple of names), and ``nested``: the
    names of those whose type is not a scalar (a struct, map, list, array, union, JSON
    document…). :func:`carewall.egress.reading.source_columns` returns one."""

    nested: frozenset[str]

    def __new__(cls, names: Iterable[str], nested: Iterable[str] = ()) -> SourceColumns:
        self = super().__new__(cls, names)
        self.nested = frozenset(nested)
        return self


def first_repeated(names: Iterable[str]) -> str | None:
    """The first name that repeats an earlier one, case aside (as DuckDB and Spark resolve
    names), or None."""
    seen: set[str] = set()
    for name in names:
        if name.casefold() in seen:
            return name
        seen.add(name.casefold())
    return None


def check_source_columns(mapping: EgressMapping, source_columns: Sequence[str]) -> None:
    """The source's column names are unique (case aside, as DuckDB and Spark resolve them),
    every column the mapping names exists in the source, spelt exactly, and (when the
    columns' types are known: :class:`SourceColumns`) holds one scalar value per row."""
    repeated = first_repeated(source_columns)
    if repeated is not None:
        raise InputError(
            f"the source has several columns named {shown_name(repeated)} (case aside)",
            field="SOURCE",
            fix="rename the source's columns so that every name is unique, case aside "
            "(DuckDB would read the second under another name)",
        )
    present = set(source_columns)
    nested = source_columns.nested if isinstance(source_columns, SourceColumns) else frozenset()
    for name in mapping.referenced():
        if name not in present:
            raise InputError(
                f"the source has no column {shown_name(name)}",
                field="mapping",
                fix="map the source's columns as the source spells them (case included)",
            )
        if name in nested:
            raise InputError(
                f"the source column {shown_name(name)} is not a scalar column (a struct, map, "
                "list, array, union or JSON document can carry fields of any category)",
                field="mapping",
                fix="flatten it first: one scalar column per field, each mapped to its own "
                "category",
            )


def _verdict(
    category: str, requested: set[str], decision: CategoryDecision | None
) -> ColumnVerdict:
    if category in NEVER_DISCLOSED:
        return ColumnVerdict(False, "never disclosed", (NEVER_RULE,))
    if category not in requested:
        return ColumnVerdict(False, "not requested")
    if decision is None:
        return ColumnVerdict(False, "refused", (NO_DECISION,))
    if decision.outcome == "review":
        return ColumnVerdict(True, "permitted", decision.rules)
    return ColumnVerdict(False, "refused", decision.rules)


def build_plan(
    mapping: EgressMapping,
    categories: Sequence[str],
    decide: Decide,
    *,
    source_columns: Sequence[str] | None = None,
) -> EgressPlan:
    """Decide each combination of subject facts once and say which columns go to each.

    ``categories`` are the request's; ``decide`` answers for one combination of facts (e.g.
    ``lambda f: engine.decide_facts(facts, [f], register).categories``). With
    ``source_columns`` the mapping is checked against them and every unmapped column is
    listed (as not going, reason ``unmapped``).
    """
    known = vocabulary()["category"]
    for c in categories:
        if c not in known:
            raise InputError(
                "not a vocabulary category",
                field="categories",
                fix=f"use only: {', '.join(known)}",
            )
    if not categories:
        raise InputError("the request asks for no category", field="categories")
    if source_columns is not None:
        check_source_columns(mapping, source_columns)
    requested = set(categories)
    decisions = {code: dict(decide(facts)) for code, facts in enumerate(GROUPS)}

    verdicts: dict[str, tuple[ColumnVerdict, ...]] = {}
    for column, category in mapping.columns:
        verdicts[column] = tuple(
            _verdict(category, requested, decisions[code].get(category))
            for code in range(len(GROUPS))
        )
    groups = tuple(
        GroupPlan(
            facts,
            tuple(c for c, _ in mapping.columns if verdicts[c][code].goes),
            {c: d for c, d in decisions[code].items() if c in requested},
        )
        for code, facts in enumerate(GROUPS)
    )
    if source_columns is not None:
        for column in source_columns:
            if column in verdicts:
                continue
            if column in mapping.fact_columns:
                reason: Reason = "fact column"
            elif column == mapping.subject_ref:
                reason = "subject reference"
            else:
                reason = "unmapped"
            verdicts[column] = (ColumnVerdict(False, reason),) * len(GROUPS)
    return EgressPlan(
        mapping,
        tuple(dict.fromkeys(categories)),
        groups,
        verdicts,
        tuple(source_columns) if source_columns is not None else None,
    )
