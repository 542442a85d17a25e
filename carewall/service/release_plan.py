"""Who gets what in a release, decided per combination of facts, never per subject.

A release is decided on two records of each subject: the requester's claim (decided when
the request came in) and the holder's record (decided again at release). Both are a few
booleans, so a release of 100,000 people has at most a handful of distinct (claimed, held)
pairs. The plan maps each pair to the group it is released in (or to nothing), and keeps
the reviewer's per-subject corrections; a subject's group follows from its claimed facts
and the corrections alone. The reviewer's call records the plan once; the background job
that writes each subject's notice reads a subject's group from it (:meth:`group_of`).

Pure data: no database here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from carewall.policy.facts import SubjectFacts
from carewall.service.release import releasable_categories as _cats

__all__ = [
    "Group",
    "ReleasePlan",
    "default_held",
    "permitted_by_facts",
    "released_count",
    "released_group",
]

Facts3 = tuple[bool, bool, bool]


def _f3(f: SubjectFacts) -> Facts3:
    return (f.is_child, f.is_victim_or_witness, f.consent)


def default_held(claimed: SubjectFacts) -> SubjectFacts:
    """The holder's record of a subject the reviewer said nothing about.

    The flags are confirmed as claimed; consent is never taken from the claim.
    """
    return SubjectFacts(claimed.is_child, claimed.is_victim_or_witness, False)


def _facts_key(obj: Any) -> SubjectFacts | None:
    if not isinstance(obj, Mapping):
        return None
    vals = [obj.get(k) for k in ("is_child", "is_victim_or_witness", "consent")]
    a, b, c = vals
    if not (isinstance(a, bool) and isinstance(b, bool) and isinstance(c, bool)):
        return None
    return SubjectFacts(a, b, c)


def permitted_by_facts(
    decision: Mapping[str, Any], combos: Iterable[SubjectFacts]
) -> dict[SubjectFacts, frozenset[str]]:
    """What ``decision`` permits for each combination of facts in ``combos`` (fail closed).

    A decision about subjects whose facts differ lists a group per combination, with its
    ``facts``; one about subjects who all share their facts has no groups. A combination
    the decision does not name gets nothing.
    """
    out: dict[SubjectFacts, frozenset[str]] = {f: frozenset() for f in combos}
    if decision.get("outcome") != "review":
        return out
    groups = decision.get("groups")
    if not groups:
        if len(out) > 1:
            return out  # one answer cannot speak for several combinations
        cats = _cats(decision.get("categories"))
        return {f: cats for f in out}
    for g in groups:
        key = _facts_key(g.get("facts")) if isinstance(g, Mapping) else None
        if key is not None and key in out:
            out[key] = _cats(g.get("categories"))
    return out


@dataclass(frozen=True)
class Group:
    """One release entry's people: the holder's facts and the categories they share."""

    facts: SubjectFacts
    categories: tuple[str, ...]
    count: int


@dataclass
class ReleasePlan:
    """Each (claimed, held) pair's group index (None: released nothing), and corrections."""

    groups: list[Group]
    pairs: dict[tuple[SubjectFacts, SubjectFacts], int | None]
    corrections: dict[int, SubjectFacts] = field(default_factory=dict)
    # an extract's facts come from the holder's own data: they are its record, consent too
    held_as_claimed: bool = False

    @classmethod
    def build(
        cls,
        pair_counts: Mapping[tuple[SubjectFacts, SubjectFacts], int],
        stored: Mapping[SubjectFacts, frozenset[str]],
        fresh: Mapping[SubjectFacts, frozenset[str]],
        corrections: Mapping[int, SubjectFacts],
        *,
        limit: Mapping[SubjectFacts, frozenset[str]] | None = None,
        held_as_claimed: bool = False,
    ) -> ReleasePlan:
        """Intersect what the stored decision permits on the claim with what the fresh one
        permits on the holder's record (and, for an extract, with what its file holds for
        each group: ``limit``); one group per (held facts, categories)."""
        counts: Counter[tuple[SubjectFacts, tuple[str, ...]]] = Counter()
        allowed: dict[tuple[SubjectFacts, SubjectFacts], tuple[str, ...]] = {}
        for (claimed, held), n in pair_counts.items():
            may = stored.get(claimed, frozenset()) & fresh.get(held, frozenset())
            if limit is not None:
                may &= limit.get(held, frozenset())
            cats = tuple(sorted(may))
            allowed[(claimed, held)] = cats
            if cats and n > 0:
                counts[(held, cats)] += n
        keys = sorted(counts, key=lambda k: (_f3(k[0]), k[1]))
        index = {k: g for g, k in enumerate(keys)}
        groups = [Group(h, cats, counts[(h, cats)]) for h, cats in keys]
        pairs = {
            pair: index.get((pair[1], cats)) if cats else None for pair, cats in allowed.items()
        }
        return cls(groups, pairs, dict(corrections), held_as_claimed)

    @property
    def released(self) -> int:
        return sum(g.count for g in self.groups)

    @property
    def categories(self) -> list[str]:
        return sorted({c for g in self.groups for c in g.categories})

    def held(self, position: int, claimed: SubjectFacts) -> SubjectFacts:
        if self.held_as_claimed:
            return claimed
        return self.corrections.get(position) or default_held(claimed)

    def group_of(self, position: int, claimed: SubjectFacts) -> int | None:
        """The group subject ``position`` (claimed ``claimed``) was released in, if any."""
        return self.pairs.get((claimed, self.held(position, claimed)))

    def positions(self, claimed: Iterable[tuple[int, SubjectFacts]]) -> list[list[int]]:
        """Each group's subject positions, from every subject's claimed facts."""
        out: list[list[int]] = [[] for _ in self.groups]
        for pos, c in claimed:
            g = self.group_of(pos, c)
            if g is not None:
                out[g].append(pos)
        return out

    # ----- the release record (svc_requests.release), JSON -------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "pairs": [[*_f3(c), *_f3(h), g] for (c, h), g in self.pairs.items()],
            "corrections": [[p, *_f3(f)] for p, f in sorted(self.corrections.items())],
            "held_as_claimed": self.held_as_claimed,
        }

    @classmethod
    def of_record(cls, release: Mapping[str, Any]) -> ReleasePlan | None:
        """The plan a release record keeps (None: an older record listing its subjects)."""
        return cls.from_json(release["groups"], release["plan"]) if "plan" in release else None

    @classmethod
    def from_json(cls, groups: list[Mapping[str, Any]], obj: Mapping[str, Any]) -> ReleasePlan:
        gs = [
            Group(
                SubjectFacts(
                    bool(g["facts"]["is_child"]),
                    bool(g["facts"]["is_victim_or_witness"]),
                    bool(g["facts"]["consent"]),
                ),
                tuple(g["categories"]),
                int(g["count"]),
            )
            for g in groups
        ]
        pairs: dict[tuple[SubjectFacts, SubjectFacts], int | None] = {}
        for a, b, c, d, e, f, g in obj["pairs"]:
            pairs[(SubjectFacts(a, b, c), SubjectFacts(d, e, f))] = g
        corrections = {int(p): SubjectFacts(a, b, c) for p, a, b, c in obj["corrections"]}
        return cls(gs, pairs, corrections, bool(obj.get("held_as_claimed", False)))


def released_group(
    release: Mapping[str, Any], plan: ReleasePlan | None, position: int, claimed: SubjectFacts
) -> Mapping[str, Any] | None:
    """The group of the release record ``release`` (its plan: ``ReleasePlan.of_record``)
    that subject ``position``, claimed ``claimed``, was released in; None if none."""
    if plan is None:  # an older record lists each group's subjects
        return next((g for g in release["groups"] if position in g["subjects"]), None)
    k = plan.group_of(position, claimed)
    return None if k is None else release["groups"][k]


def released_count(release: Mapping[str, Any], plan: ReleasePlan | None) -> int:
    """How many subjects the release record ``release`` (its plan: as above) released."""
    if plan is None:
        return sum(len(g["subjects"]) for g in release["groups"])
    return plan.released
