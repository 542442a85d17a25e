"""What a release may contain: the categories both the stored and the current policy permit.

A decision (contract §4) may split subjects into groups whose attributes differ (a child, a
victim or witness); each subject gets only what its own group permits. At release time the
policy is asked again and the two answers are intersected, so a policy tightened since the
request came in is obeyed, and a policy loosened since cannot widen what the reviewer saw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "RELEASABLE",
    "permitted_by_subject",
    "plan_release",
    "releasable_categories",
    "union",
]

# Category outcomes that allow a release after human review; anything else is a refusal.
RELEASABLE = frozenset({"review", "permitted", "allowed", "released"})


def releasable_categories(categories: Any) -> frozenset[str]:
    """The categories a decision's ``categories`` object lets go after review (fail closed)."""
    if not isinstance(categories, Mapping):
        return frozenset()
    return frozenset(
        c
        for c, v in categories.items()
        if isinstance(v, Mapping) and v.get("outcome") in RELEASABLE
    )


def permitted_by_subject(decision: Mapping[str, Any], n: int) -> list[frozenset[str]]:
    """For each of ``n`` subjects, the categories ``decision`` permits (fail closed)."""
    if decision.get("outcome") != "review":
        return [frozenset()] * n
    groups = decision.get("groups")
    if not groups:
        return [releasable_categories(decision.get("categories") or {})] * n
    out: list[frozenset[str]] = [frozenset()] * n
    for g in groups:
        cats = releasable_categories(g.get("categories") or {})
        for i in g.get("subjects") or []:
            if isinstance(i, int) and 0 <= i < n:
                out[i] = cats
    return out


def plan_release(
    stored: Mapping[str, Any], fresh: Mapping[str, Any], n: int
) -> list[tuple[list[int], list[str]]]:
    """Groups of (subject positions, categories) to release; empty when nothing may go."""
    a = permitted_by_subject(stored, n)
    b = permitted_by_subject(fresh, n)
    plan: dict[frozenset[str], list[int]] = {}
    for i in range(n):
        cats = a[i] & b[i]
        if cats:
            plan.setdefault(cats, []).append(i)
    return [(positions, sorted(cats)) for cats, positions in plan.items()]


def union(groups: Sequence[tuple[list[int], list[str]]]) -> list[str]:
    """Every category released to any group, sorted."""
    return sorted({c for _, cats in groups for c in cats})
