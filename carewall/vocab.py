"""The contract's closed vocabulary (§1), loaded once from ``vocabulary.json``.

Both request validation and the Cedar schema's enumerated entity types are built from
this one file, so a typo in a rule fails validation instead of silently never firing.
"""

from __future__ import annotations

import json
import os
from functools import cache
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
    # Beside this module (as the wheel installs it): importlib.resources would cost the
    # `carewall decide` start-up a tenth of its time for this one read.
    with open(os.path.join(os.path.dirname(__file__), "vocabulary.json"), encoding="utf-8") as f:
        text = f.read()
    raw = json.loads(text)
    return {kind: tuple(raw[kind]) for kind in KINDS}
