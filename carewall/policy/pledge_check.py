"""An independent, pure-Python reading of the pledge (contract §5).

:func:`pledge_violations` re-states each pledge rule over the facts a ledger entry carries
(:class:`carewall.entries._Facts`), without Cedar. An outside auditor runs it over ``release``
entries; the test-suite compares it with the Cedar engine so that the two readings cannot
drift apart unnoticed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from carewall.vocab import vocabulary

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


def is_immigration_offence(offence: str | None) -> bool:
    """True for the immigration status offences of contract §1."""
    return offence is not None and offence in vocabulary()["immigration_offence"]


def pledge_violations(facts: Mapping[str, Any]) -> list[str]:
    """The pledge rule ids that ``facts`` break, in the contract's order.

    ``facts`` has the keys of a ledger ``request``/``release`` entry. A missing key is read
    in the way that refuses (fail closed): an absent ``court_order`` is no court order, an
    absent ``victims_or_witnesses`` count is read as "some".
    """
    requester = facts.get("requester_function")
    holder = facts.get("holder_function")
    purpose = facts.get("purpose")
    basis = facts.get("legal_basis")
    bases = {basis, *(facts.get("other_bases") or ())}
    offence = facts.get("offence")
    court_order = facts.get("court_order") is True
    onward = set(facts.get("onward_recipients") or ())
    categories = set(facts.get("categories") or ())
    victims = facts.get("victims_or_witnesses")
    has_victims = victims is None or bool(victims)

    immigration_offence = is_immigration_offence(offence)
    immigration_purpose = purpose in _IMMIGRATION_PURPOSES
    para4 = _PARA4 in bases
    consent = "consent" in bases

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
            or (requester == "police" and not court_order and not consent)
        ),
        "pledge/never-nationality": bool(categories & _NEVER),
        "pledge/court-order-health": holder == "health"
        and bool(categories & _HEALTH_RECORDS)
        and not court_order
        and not (requester == "health" and purpose == "direct_care"),
        "pledge/entitlement-no-contact": purpose == "entitlement_check"
        and bool(categories & _CONTACT),
    }
    return [rule for rule in PLEDGE_RULE_IDS if broken[rule]]
