"""The policy set as text: the packaged pledge and a local policy, checked before use.

:func:`check_pledge` proves the pledge is contract §5's rules exactly (by their canonical
hash, so comments and layout may change, the rules may not); :func:`check_local` refuses
a local policy that could weaken it: a rule without an @id, an id that reads as "pledge"
in any spelling or is reserved or used twice, a permit without a known @legal_basis, a
permit citing the immigration exemption. :class:`~carewall.policy.engine.Engine` runs both
before it hands the set to Cedar.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import OSA

from carewall.errors import PolicyError
from carewall.ids import is_id
from carewall.policy.cedar import cedarpy
from carewall.policy.decision import DEFAULT_DENY, EVALUATION_ERROR, NO_DECISION, UNNAMED_PERMIT
from carewall.policy.names import fold
from carewall.policy.pledge_check import PLEDGE_RULE_IDS
from carewall.vocab import vocabulary

__all__ = [
    "PLEDGE_AST_SHA256",
    "RESERVED",
    "Rule",
    "check_local",
    "check_pledge",
    "package_text",
    "static_policies",
]

# SHA-256 of the pledge's rules in canonical form (Cedar's JSON policy format with sorted
# keys): comments and layout may change, the rules themselves may not. Changing a pledge
# rule means changing this constant, in review, in the open.
PLEDGE_AST_SHA256 = "90ef92163e144c24d6cd593d04dea4584a4683203f763117adf82b49c8a2d7ef"

_IMMIGRATION_EXEMPTION = "dpa2018_sch2_p1_para4_immigration"
_PLEDGE_FOLDED = fold("pledge")


def _looks_like_pledge(rule_id: str) -> bool:
    """True when the first part of a rule id reads as "pledge", however it is spelt: folded
    ('p1edge'), longer ('pledges'), or within two slips of it ('pledg', 'pleadge', 'plegde';
    the optimal string alignment distance), since a reader of a decision takes any of them
    for the pledge. ('ledger' and 'hedge' are that near too, and refused: a local id has
    no need of them.)"""
    first = fold(rule_id.split("/", 1)[0]).replace(" ", "")
    return first.startswith(_PLEDGE_FOLDED) or (
        OSA.distance(first, _PLEDGE_FOLDED, score_cutoff=2) <= 2
    )


RESERVED = frozenset({DEFAULT_DENY, EVALUATION_ERROR, NO_DECISION, UNNAMED_PERMIT})


@dataclass(frozen=True)
class Rule:
    """One rule of the active set, as an auditor names it."""

    id: str
    effect: str  # "permit" | "forbid"
    legal_basis: str | None
    rationale: str | None
    pledge: bool


def package_text(name: str) -> str:
    """A policy file packaged beside this module (``pledge.cedar``, ``default.cedar``)."""
    # A plain path, not importlib.resources: see carewall.vocab.vocabulary.
    with open(os.path.join(os.path.dirname(__file__), name), encoding="utf-8") as f:
        return f.read()


def static_policies(text: str, what: str) -> dict[str, Any]:
    try:
        parsed = json.loads(cedarpy.policies_to_json_str(text))
    except ValueError as e:
        raise PolicyError(
            f"the {what} is not valid Cedar: {e}",
            field=what,
            fix="fix the Cedar syntax (cedar format / cedar validate help)",
        ) from e
    if parsed.get("templates"):
        raise PolicyError(
            f"the {what} contains a template",
            field=what,
            fix="write static policies only; templates with ?principal or ?resource never apply",
        )
    policies: dict[str, Any] = parsed.get("staticPolicies", {})
    # Cedar names policies policy0, policy1, … in text order.
    return dict(sorted(policies.items(), key=lambda kv: int(kv[0].removeprefix("policy"))))


def _canonical(policies: dict[str, Any]) -> str:
    return json.dumps(list(policies.values()), sort_keys=True, separators=(",", ":"))


def check_pledge(text: str) -> list[Rule]:
    policies = static_policies(text, "pledge")
    rules = []
    for p in policies.values():
        ann = p.get("annotations", {})
        rules.append(Rule(ann.get("id", ""), p["effect"], None, ann.get("rationale"), True))
    ids = [r.id for r in rules]
    missing = [i for i in PLEDGE_RULE_IDS if i not in ids]
    if missing:
        raise PolicyError(
            f"the pledge rule {missing[0]!r} is missing",
            field="pledge",
            fix="reinstall carewall: pledge.cedar must hold every rule of contract §5",
        )
    extra = [i for i in ids if i not in PLEDGE_RULE_IDS]
    if extra or len(ids) != len(set(ids)):
        raise PolicyError(
            "the pledge holds a rule that is not in contract §5, or holds one twice",
            field="pledge",
            fix="reinstall carewall",
        )
    for r in rules:
        if r.effect != "forbid" or not r.rationale:
            raise PolicyError(
                f"the pledge rule {r.id!r} must be a forbid with a @rationale",
                field="pledge",
                fix="reinstall carewall",
            )
    digest = hashlib.sha256(_canonical(policies).encode()).hexdigest()
    if digest != PLEDGE_AST_SHA256:
        raise PolicyError(
            "the pledge rules have been altered",
            field="pledge",
            fix="reinstall carewall: the pledge must be present verbatim",
        )
    return rules


def check_local(text: str) -> list[Rule]:
    bases = vocabulary()["legal_basis"]
    rules: list[Rule] = []
    seen: set[str] = set()
    for n, p in enumerate(static_policies(text, "policy").values()):
        ann = p.get("annotations", {})
        rule_id = ann.get("id")
        where = f"policy rule {n + 1}"
        if not rule_id:
            raise PolicyError(
                f"{where} has no @id", field="policy", fix='add @id("local/…") to every rule'
            )
        if not is_id(rule_id, "rule"):
            raise PolicyError(
                f"{where} has an @id that is not a rule id",
                field="policy",
                fix="write rule ids in lowercase ASCII letters, digits, '-', '_' and '/', "
                'e.g. @id("local/police-suspect")',
            )
        if _looks_like_pledge(rule_id):
            verb = "redefines the pledge rule" if rule_id in PLEDGE_RULE_IDS else "uses the id"
            raise PolicyError(
                f"{where} {verb} {rule_id!r}",
                field="policy",
                fix="the pledge is loaded from the package; local rule ids must not start "
                "with 'pledge' in any spelling, nor with a word within two letters of it: "
                "start them with 'local/'",
            )
        if rule_id in RESERVED or rule_id in seen:
            raise PolicyError(
                f"the rule id {rule_id!r} is reserved or used twice",
                field="policy",
                fix="give every rule its own @id",
            )
        seen.add(rule_id)
        basis = ann.get("legal_basis")
        if p["effect"] == "permit" and basis == _IMMIGRATION_EXEMPTION:
            raise PolicyError(
                f"the permit {rule_id!r} cites the immigration exemption",
                field="policy",
                fix="the pledge refuses that basis; no local permit may cite it",
            )
        if p["effect"] == "permit" and basis not in bases:
            raise PolicyError(
                f"the permit {rule_id!r} names no known @legal_basis"
                + (f" ({basis!r})" if basis else ""),
                field="policy",
                fix=f"add @legal_basis with one of: {', '.join(bases)}",
            )
        rules.append(Rule(rule_id, p["effect"], basis, ann.get("rationale"), False))
    return rules
