"""The contract's closed vocabulary (§1), loaded once from ``vocabulary.json``.

Both request validation and the Cedar schema's enumerated entity types are built from
this one file, so a typo in a rule fails validation instead of silently never firing.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Literal

__all__ = ["KINDS", "Kind", "vocabulary"]

Kind = Literal[
    "function", "purpose", "legal_basis", "category", "immigration_offence", "role", "act"
]
KINDS: tuple[Kind, ...] = (
    "function",
    "purpose",
    "legal_basis",
    "category",
    "immigration_offence",
    "role",
    "act",
)


@cache
def vocabulary() -> dict[str, tuple[str, ...]]:
    """Every closed list, by kind, in the contract's order."""
    text = resources.files("carewall").joinpath("vocabulary.json").read_text("utf-8")
    raw = json.loads(text)
    return {kind: tuple(raw[kind]) for kind in KINDS}
