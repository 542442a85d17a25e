"""The decision document (contract §4): what the engine concluded, and why.

Pure data: no Cedar here. ``rules`` name every deciding rule by ``@id``; a refusal with no
matching forbid is ``default-deny``; a refusal because evaluation failed is
``evaluation-error`` / ``no-decision`` / ``unnamed-permit`` (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DEFAULT_DENY",
    "EVALUATION_ERROR",
    "NO_DECISION",
    "UNNAMED_PERMIT",
    "CategoryDecision",
    "Decision",
    "Outcome",
]

Outcome = Literal["refused", "review"]

DEFAULT_DENY = "default-deny"
EVALUATION_ERROR = "evaluation-error"
NO_DECISION = "no-decision"
UNNAMED_PERMIT = "unnamed-permit"

# Why the engine's own (non-Cedar) rule ids refuse.
BUILTIN_REASONS: dict[str, str] = {
    DEFAULT_DENY: "No rule of the local policy permits this disclosure, so it is refused.",
    EVALUATION_ERROR: "The policy could not be evaluated for this request, so it is refused.",
    NO_DECISION: "The policy engine reached no decision for this request, so it is refused.",
    UNNAMED_PERMIT: "Only a permit that names its rule and legal basis can allow a disclosure.",
}


@dataclass(frozen=True)
class CategoryDecision:
    outcome: Outcome
    rules: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "rules": list(self.rules)}


@dataclass(frozen=True)
class Decision:
    """The engine's answer. ``review`` means a named human must still sign off."""

    outcome: Outcome
    categories: dict[str, CategoryDecision]
    rules: list[str]
    reasons: list[str]
    policy: str
    # One entry per distinct subject-attribute combination (to_json shows them only when
    # there is more than one),
    # {"subjects": [indices], "categories": {category: {"outcome", "rules"}}}.
    groups: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def permitted(self) -> list[str]:
        """Categories that may be released (to some subject), subject to human review."""
        return [c for c, d in self.categories.items() if d.outcome == "review"]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "outcome": self.outcome,
            "categories": {c: d.to_json() for c, d in self.categories.items()},
            "rules": list(self.rules),
            "reasons": list(self.reasons),
            "policy": self.policy,
        }
        if len(self.groups) > 1:
            out["groups"] = self.groups
        if self.errors:
            out["errors"] = list(self.errors)
        return out
