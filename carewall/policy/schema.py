"""The Cedar schema, built from the contract's vocabulary (``carewall/vocabulary.json``).

Every closed list becomes an enumerated entity type (Cedar 4), so a rule that names
``Purpose::"immigraton_control"`` fails validation instead of silently never firing.
The same lists drive request validation in :mod:`carewall.policy.request`.

Model: *may ``principal`` (the requesting organisation) be sent ``resource`` (one category
of personal data) by ``context.holder``, for these facts?* Organisations and their
functions come from the register, never from the request.
"""

from __future__ import annotations

import json
from functools import cache

from carewall.vocab import vocabulary

__all__ = ["ACTION", "ENUM_TYPES", "schema_text"]

ACTION = "disclose"

# Cedar entity type for each vocabulary kind that a rule may name.
ENUM_TYPES: dict[str, str] = {
    "function": "Function",
    "purpose": "Purpose",
    "legal_basis": "LegalBasis",
    "category": "Category",
}


def _enum(kind: str) -> str:
    ids = ", ".join(json.dumps(i) for i in vocabulary()[kind])
    return f"entity {ENUM_TYPES[kind]} enum [{ids}];"


@cache
def schema_text() -> str:
    """The Cedar schema (human-readable syntax)."""
    enums = "\n".join(_enum(kind) for kind in ENUM_TYPES)
    return f"""{enums}
entity Organisation {{ function: Function }};
action {ACTION} appliesTo {{
  principal: [Organisation],
  resource: [Category],
  context: {{
    holder: Organisation,
    purpose: Purpose,
    legal_basis: LegalBasis,
    other_bases: Set<LegalBasis>,
    offence: String,
    immigration_offence: Bool,
    court_order: Bool,
    onward_recipients: Set<Function>,
    victim_or_witness: Bool,
    consent: Bool,
    child: Bool,
    subjects: Long
  }}
}};
"""
