"""What an extract's file holds, as the release of its request must state it.

An extract (:mod:`carewall.service.extracts`) is filtered to a held file before any
reviewer sees it; when a reviewer releases it, the release may state only what the file
really holds, per group of subjects, and only if the policy still permits all of it. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from carewall.errors import ConflictError
from carewall.policy.facts import SubjectFacts

__all__ = ["Extract"]


@dataclass(frozen=True)
class Extract:
    """The held file's hash (``sha256:<hex>``) and the categories it holds per group."""

    sha256: str
    categories: Mapping[SubjectFacts, frozenset[str]]

    def check(
        self,
        stored: Mapping[SubjectFacts, frozenset[str]],
        fresh: Mapping[SubjectFacts, frozenset[str]],
    ) -> None:
        """Refuse a release when the file holds more for a group than may go now."""
        for facts, cats in self.categories.items():
            may = stored.get(facts, frozenset()) & fresh.get(facts, frozenset())
            extra = sorted(cats - may)
            if extra:
                raise ConflictError(
                    "the extract's file holds "
                    + ", ".join(extra)
                    + " for a group to whom the policy no longer permits it",
                    field="id",
                    fix="make the extract again with `carewall egress run`",
                )
