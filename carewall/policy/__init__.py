"""carewall policy: the request/decision model, the pledge, and the Cedar decision engine.

The request models (:mod:`carewall.policy.request`) are built with pydantic, which costs
more to import than ``carewall decide`` may spend; they are imported on first use of
``DisclosureRequest``, ``Subject`` or ``parse_request`` from here, not with the package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from carewall.policy.checks import MAX_REQUEST_BYTES
from carewall.policy.decision import CategoryDecision, Decision
from carewall.policy.document import parse_document
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

if TYPE_CHECKING:
    from carewall.policy.request import DisclosureRequest, Subject, parse_request

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
    "parse_document",
    "parse_register",
    "parse_request",
    "pledge_violations",
]

_LAZY = frozenset({"DisclosureRequest", "Subject", "parse_request"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("carewall.policy.request"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
