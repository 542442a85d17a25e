"""carewall policy: the request/decision model, the pledge, and the Cedar decision engine."""

from __future__ import annotations

from carewall.policy.decision import CategoryDecision, Decision
from carewall.policy.engine import Engine, Rule
from carewall.policy.pledge_check import PLEDGE_RULE_IDS, pledge_violations
from carewall.policy.register import (
    DEFAULT_REGISTER_PATH,
    Organisation,
    Register,
    Reviewer,
    load_register,
    parse_register,
)
from carewall.policy.request import (
    MAX_REQUEST_BYTES,
    DisclosureRequest,
    Subject,
    parse_request,
)

__all__ = [
    "DEFAULT_REGISTER_PATH",
    "MAX_REQUEST_BYTES",
    "PLEDGE_RULE_IDS",
    "CategoryDecision",
    "Decision",
    "DisclosureRequest",
    "Engine",
    "Organisation",
    "Register",
    "Reviewer",
    "Rule",
    "Subject",
    "load_register",
    "parse_register",
    "parse_request",
    "pledge_violations",
]
