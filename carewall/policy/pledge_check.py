"""An independent, pure-Python reading of the pledge (contract §5).

:func:`pledge_violations` re-states each pledge rule over the facts a ledger entry carries
(:class:`carewall.entries._Facts`), without Cedar. An outside auditor runs it over ``release``
entries; the test-suite compares it with the Cedar engine so that the two readings cannot
drift apart unnoticed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The family rule of contract §1 lives in offences.py; re-exported for older callers.
from carewall.policy.offences import is_immigration_offence

__all__ = ["PLEDGE_RULE_IDS", "is_immigration_offence", "pledge_violations"]

PLEDGE_RULE_IDS: tuple[str, ...] = (
    "pledge/no-immigration-recipient",
    "pledge/no-immigration-purpose",
    "pledge/no-immigration-exemption",
    "pledge/no-immigration-offence",
    "pledge/no-onward-immigration",
    "pledge/no-victim-witness-referral",
    "pledge/never-nationality",
    "pledge/court-order-health",
    "pledge/entitlement-no-contact",
)

_IMMIGRATION = "immigration_enforcement"
_IMMIGRATION_PURPOSES = frozenset({"immigration_enforcement", "immigration_control"})
_PARA4 = "dpa2018_sch2_p1_para4_immigration"
_NEVER = frozenset({"nationality", "country_of_birth", "immigration_status"})
_HEALTH_RECORDS = frozenset(
    {"health_record", "mental_health_record", "sexual_health_record", "counselling_notes"}
)
_CONTACT = frozenset({"address", "contact_details"})


def pledge_violations(facts: Mapping[str, Any]) -> list[str]:
    """The pledge rule ids that ``facts`` break, in the contract's order.

    ``facts`` has the keys of a ledger ``release`` entry (or a ``request`` entry with one
    group's ``is_child``/``is_victim_or_witness``/``consent`` added). A missing key is read
    in the way that refuses (fail closed): an absent ``court_order`` is no court order,
    absent ``consent`` is no consent, and an absent victim flag and count is "a victim".
    """
    requester = facts.get("requester_function")
    purpose = facts.get("purpose")
    basis = facts.get("legal_basis")
    bases = {basis, *(facts.get("other_bases") or ())}
    offence = facts.get("offence")
    court_order = facts.get("court_order") is True
    onward = set(facts.get("onward_recipients") or ())
    categories = set(facts.get("categories") or ())
    flag = facts.get("is_victim_or_witness")
    count = facts.get("victims_or_witnesses")
    if isinstance(flag, bool):
        has_victims = flag
    elif isinstance(count, int) and not isinstance(count, bool):
        has_victims = count > 0
    else:
        has_victims = True
    consent = facts.get("consent") is True

    immigration_offence = is_immigration_offence(offence if isinstance(offence, str) else None)
    immigration_purpose = purpose in _IMMIGRATION_PURPOSES
    para4 = _PARA4 in bases
    to_police = requester == "police" or "police" in onward

    broken = {
        "pledge/no-immigration-recipient": requester == _IMMIGRATION,
        "pledge/no-immigration-purpose": immigration_purpose,
        "pledge/no-immigration-exemption": para4,
        "pledge/no-immigration-offence": immigration_offence,
        "pledge/no-onward-immigration": _IMMIGRATION in onward,
        "pledge/no-victim-witness-referral": has_victims
        and (
            immigration_purpose
            or immigration_offence
            or para4
            or (to_police and not court_order and not consent)
        ),
        "pledge/never-nationality": bool(categories & _NEVER),
        "pledge/court-order-health": bool(categories & _HEALTH_RECORDS)
        and not court_order
        and not (requester == "health" and purpose == "direct_care"),
        "pledge/entitlement-no-contact": purpose == "entitlement_check"
        and bool(categories & _CONTACT),
    }
    return [rule for rule in PLEDGE_RULE_IDS if broken[rule]]
