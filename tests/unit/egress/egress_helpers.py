"""Decide callables and mappings shared by the egress unit tests."""

from __future__ import annotations

from collections.abc import Mapping

from carewall.policy.decision import CategoryDecision
from carewall.policy.facts import SubjectFacts

PERMIT = "local/test-permit"
VICTIM = "pledge/no-victim-witness-referral"

MAPPING = """
subject_ref = "ref"
[columns]
forename = "name"
postcode = "address"
attendance = "attendance"
nationality = "nationality"
sen = "education_record"
[facts]
is_child = "under_18"
is_victim_or_witness = "victim"
consent = "consent"
"""


def decide(facts: SubjectFacts) -> Mapping[str, CategoryDecision]:
    """Says review to everything (never-disclosed included) except victims without consent;
    attendance for children only."""
    out = {}
    for c in ("name", "address", "attendance", "nationality", "education_record"):
        ok = (not facts.is_victim_or_witness or facts.consent) and (
            c != "attendance" or facts.is_child
        )
        out[c] = (
            CategoryDecision("review", (PERMIT,)) if ok else CategoryDecision("refused", (VICTIM,))
        )
    return out


def refuse_all(facts: SubjectFacts) -> Mapping[str, CategoryDecision]:
    return {
        c: CategoryDecision("refused", ("pledge/no-immigration-recipient",))
        for c in ("name", "address", "attendance", "nationality", "education_record")
    }
