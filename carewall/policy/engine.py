"""The firewall decision engine: the pledge and a local policy, evaluated by Cedar.

This is the only module that imports ``cedarpy``. The schema and policy set are parsed and
validated once, at load; an invalid policy, or one that drops, alters or shadows a pledge
rule, is refused with :class:`PolicyError` and the engine never starts.

Each requested category is decided separately, and only the permitted subset may be
released (after human review). Everything fails closed: a Cedar evaluation error, a
``NoDecision``, or an ``Allow`` without a named permit is a refusal, reported as such.
Subjects whose attributes are equal get the same decision, so each distinct combination
is evaluated once, in one ``is_authorized_batch`` call for the whole request.
Answers already given under the same policy and register come from a
:class:`~carewall.policy.cache.DecisionCache` keyed on every fact Cedar is shown;
:meth:`Engine.decide_uncached` asks Cedar every time (the differential tests compare the two).

Cedar: https://docs.cedarpolicy.com/ ; enumerated entity types need Cedar >= 4.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import cedarpy

from carewall.errors import PolicyError
from carewall.ids import is_id
from carewall.policy.cache import DecisionCache
from carewall.policy.decision import (
    BUILTIN_REASONS,
    DEFAULT_DENY,
    EVALUATION_ERROR,
    NO_DECISION,
    UNNAMED_PERMIT,
    CategoryDecision,
    Decision,
    Outcome,
)
from carewall.policy.facts import RequestFacts, SubjectFacts, facts_of
from carewall.policy.names import fold
from carewall.policy.offences import is_immigration_offence
from carewall.policy.pledge_check import PLEDGE_RULE_IDS
from carewall.policy.register import Register
from carewall.policy.schema import ACTION, ENUM_TYPES, schema_text
from carewall.vocab import vocabulary

if TYPE_CHECKING:
    from carewall.policy.request import DisclosureRequest

__all__ = ["PLEDGE_AST_SHA256", "Engine", "Rule"]

# SHA-256 of the pledge's rules in canonical form (Cedar's JSON policy format with sorted
# keys): comments and layout may change, the rules themselves may not. Changing a pledge
# rule means changing this constant, in review, in the open.
PLEDGE_AST_SHA256 = "90ef92163e144c24d6cd593d04dea4584a4683203f763117adf82b49c8a2d7ef"

_IMMIGRATION_EXEMPTION = "dpa2018_sch2_p1_para4_immigration"
_PLEDGE_FOLDED = fold("pledge")


def _looks_like_pledge(rule_id: str) -> bool:
    """True when the first part of a rule id reads as "pledge", however it is spelt."""
    first = fold(rule_id.split("/", 1)[0]).replace(" ", "")
    return first.startswith(_PLEDGE_FOLDED)


_RESERVED = frozenset({DEFAULT_DENY, EVALUATION_ERROR, NO_DECISION, UNNAMED_PERMIT})
_ACTION = {"type": "Action", "id": ACTION}


_ALLOW = cedarpy.Decision.Allow
_DENY = cedarpy.Decision.Deny
_NO_DECISION = cedarpy.Decision.NoDecision
_REFUSED_EVALUATION_ERROR = CategoryDecision("refused", (EVALUATION_ERROR,))
_REFUSED_NO_DECISION = CategoryDecision("refused", (NO_DECISION,))
_REFUSED_UNNAMED_PERMIT = CategoryDecision("refused", (UNNAMED_PERMIT,))


def _entity(kind: str, value: str) -> dict[str, Any]:
    return {"__entity": {"type": ENUM_TYPES[kind], "id": value}}


def _json_value(value: object) -> str:
    """``json.dumps(value)``, without its call overhead for booleans and integers."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return int.__repr__(value)
    return json.dumps(value)


@dataclass(frozen=True)
class Rule:
    """One rule of the active set, as an auditor names it."""

    id: str
    effect: str  # "permit" | "forbid"
    legal_basis: str | None
    rationale: str | None
    pledge: bool


def _package_text(name: str) -> str:
    return resources.files("carewall.policy").joinpath(name).read_text("utf-8")


def _static_policies(text: str, what: str) -> dict[str, Any]:
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


def _check_pledge(text: str) -> list[Rule]:
    policies = _static_policies(text, "pledge")
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


def _check_local(text: str) -> list[Rule]:
    bases = vocabulary()["legal_basis"]
    rules: list[Rule] = []
    seen: set[str] = set()
    for n, p in enumerate(_static_policies(text, "policy").values()):
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
                "with 'pledge' in any spelling",
            )
        if rule_id in _RESERVED or rule_id in seen:
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


def _group(subjects: Sequence[SubjectFacts]) -> dict[SubjectFacts, list[int]]:
    """Each distinct subject combination, with the positions of the subjects that have it."""
    combos: dict[SubjectFacts, list[int]] = {}
    for i, s in enumerate(subjects):
        bucket = combos.get(s)
        if bucket is None:
            combos[s] = [i]
        else:
            bucket.append(i)
    return combos


class Engine:
    """A loaded, validated policy set. Build with :meth:`Engine.load`; decide many times."""

    def __init__(self, pledge: str, local: str) -> None:
        pledge_rules = _check_pledge(pledge)
        local_rules = _check_local(local)
        combined = pledge.rstrip("\n") + "\n\n" + local
        result = cedarpy.validate_policies(combined, schema_text())
        if not result.validation_passed:
            names = result.id_annotations_by_policy_id
            first = result.errors[0]
            rule = names.get(first.policy_id, first.policy_id)
            raise PolicyError(
                f"rule {rule!r} does not validate against the schema: {first.error}",
                field="policy",
                fix="use only the vocabulary's ids and the schema's attributes "
                "(carewall policy check FILE)",
            )
        self.pledge_hash = "sha256:" + hashlib.sha256(pledge.encode()).hexdigest()
        canonical = cedarpy.format_policies(combined)
        self.policy_hash = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
        self.local_text = local
        self.rules: list[Rule] = pledge_rules + local_rules
        self.rule_ids: list[str] = [r.id for r in self.rules]
        # Cedar's positional ids (policy0…) follow text order: pledge first, then local.
        self._by_cedar_id = {f"policy{i}": r for i, r in enumerate(self.rules)}
        for cedar_id, p in _static_policies(combined, "policy").items():
            if p.get("annotations", {}).get("id") != self._by_cedar_id[cedar_id].id:
                raise PolicyError(
                    "rule ids could not be matched to Cedar's", field="policy", fix="report this"
                )
        self._order = {rid: i for i, rid in enumerate([*self.rule_ids, *sorted(_RESERVED)])}
        self._reasons = {
            r.id: r.rationale or f"Permitted by {r.id} (legal basis {r.legal_basis})."
            for r in self.rules
        } | BUILTIN_REASONS
        self._policies = cedarpy.PolicySet.from_str(combined)
        self._schema = cedarpy.Schema.from_str(schema_text())
        self._resources = {c: {"type": "Category", "id": c} for c in vocabulary()["category"]}
        # Each vocabulary id's entity reference as JSON, as json.dumps writes it (for
        # context_json); derived from the packaged vocabulary, which cannot change under us.
        self._entity_json = {
            kind: {v: json.dumps(_entity(kind, v)) for v in vocabulary()[kind]}
            for kind in ("purpose", "legal_basis", "function")
        }
        # How _judge names Cedar's policies: permits that may allow (named, with a basis)
        # and forbids, by Cedar's positional id.
        self._named_permits = {
            cid: r.id
            for cid, r in self._by_cedar_id.items()
            if r.effect == "permit" and r.legal_basis
        }
        self._forbids = {cid: r.id for cid, r in self._by_cedar_id.items() if r.effect == "forbid"}
        # The usual answer names one policy: its judgement, made once here by the general
        # rule (_judge_reasons), so the two agree by construction.
        self._one_reason = {
            (decision, cid): self._judge_reasons(decision, [cid])
            for decision in (_ALLOW, _DENY)
            for cid in self._by_cedar_id
        }
        self._entities: tuple[Register, Any] | None = None
        # Decisions already made under this policy; None turns caching off.
        self.cache: DecisionCache | None = DecisionCache()

    @classmethod
    def load(cls, local_policy: str | None = None, *, pledge: str | None = None) -> Engine:
        """The packaged pledge plus ``local_policy`` (Cedar text; None = packaged default).

        ``pledge`` replaces the packaged pledge text (for tests and auditors); it must still
        hold the contract's rules verbatim.
        """
        local = _package_text("default.cedar") if local_policy is None else local_policy
        return cls(cls.pledge_text() if pledge is None else pledge, local)

    @staticmethod
    def pledge_text() -> str:
        """The packaged ``pledge.cedar``."""
        return _package_text("pledge.cedar")

    @staticmethod
    def default_text() -> str:
        """The packaged default local policy, ``default.cedar``."""
        return _package_text("default.cedar")

    def _entities_for(self, register: Register) -> Any:
        cached = self._entities
        if cached is not None and cached[0] is register:
            return cached[1]
        ents = [
            {
                "uid": {"type": "Organisation", "id": o.id},
                "attrs": {
                    "function": {"__entity": {"type": ENUM_TYPES["function"], "id": o.function}}
                },
                "parents": [],
            }
            for o in register.organisations.values()
        ]
        handle = cedarpy.Entities.from_json_str(json.dumps(ents), self._schema)
        self._entities = (register, handle)
        return handle

    def context(self, facts: RequestFacts, subject: SubjectFacts, count: int) -> dict[str, Any]:
        """The Cedar context for one subject combination (facts from request and register)."""
        return {
            "holder": {"__entity": {"type": "Organisation", "id": facts.holder}},
            "purpose": _entity("purpose", facts.purpose),
            "legal_basis": _entity("legal_basis", facts.legal_basis),
            "other_bases": [_entity("legal_basis", b) for b in facts.other_bases],
            "offence": facts.offence or "",
            "immigration_offence": is_immigration_offence(facts.offence),
            "court_order": facts.court_order,
            "onward_recipients": [_entity("function", f) for f in facts.onward_recipients],
            "victim_or_witness": subject.is_victim_or_witness,
            "child": subject.is_child,
            "consent": subject.consent,
            "subjects": count,
        }

    def context_json(self, facts: RequestFacts, subject: SubjectFacts, count: int) -> str:
        """``json.dumps(self.context(facts, subject, count))``, character for character.

        Built from pieces: the request-wide part once per request (:meth:`_context_head`)
        and each vocabulary id's entity JSON once per engine. A property test holds the two
        equal for any facts, ids outside the vocabulary included.
        """
        return self._context_tail(self._context_head(facts), subject, count)

    def _entity_text(self, kind: str, value: str) -> str:
        known = self._entity_json[kind].get(value)
        return known if known is not None else json.dumps(_entity(kind, value))

    def _context_head(self, facts: RequestFacts) -> str:
        ent = self._entity_text
        return "".join(
            (
                '{"holder": {"__entity": {"type": "Organisation", "id": ',
                json.dumps(facts.holder),
                '}}, "purpose": ',
                ent("purpose", facts.purpose),
                ', "legal_basis": ',
                ent("legal_basis", facts.legal_basis),
                ', "other_bases": [',
                ", ".join([ent("legal_basis", b) for b in facts.other_bases]),
                '], "offence": ',
                json.dumps(facts.offence or ""),
                ', "immigration_offence": ',
                _json_value(is_immigration_offence(facts.offence)),
                ', "court_order": ',
                _json_value(facts.court_order),
                ', "onward_recipients": [',
                ", ".join([ent("function", f) for f in facts.onward_recipients]),
                "], ",
            )
        )

    @staticmethod
    def _context_tail(head: str, subject: SubjectFacts, count: int) -> str:
        return "".join(
            (
                head,
                '"victim_or_witness": ',
                _json_value(subject.is_victim_or_witness),
                ', "child": ',
                _json_value(subject.is_child),
                ', "consent": ',
                _json_value(subject.consent),
                ', "subjects": ',
                _json_value(count),
                "}",
            )
        )

    def cedar_requests(
        self,
        facts: RequestFacts,
        subjects: Sequence[SubjectFacts],
        register: Register,
        count: int | None = None,
    ) -> tuple[list[SubjectFacts], dict[SubjectFacts, list[int]], list[dict[str, Any]]]:
        """The Cedar requests: one per (distinct subject combination, category)."""
        # Facts about the requester and holder come from the register; unknown ids are an
        # input error, never a guess.
        register.organisation(facts.requester, field_name="requester")
        register.organisation(facts.holder, field_name="holder")
        combos = _group(subjects)
        keys = list(combos)
        principal = {"type": "Organisation", "id": facts.requester}
        total = len(subjects) if count is None else count
        out = []
        head = self._context_head(facts)
        for key in keys:
            ctx = self._context_tail(head, key, total)
            for c in facts.categories:
                out.append(
                    {
                        "principal": principal,
                        "action": _ACTION,
                        "resource": self._resources[c],
                        "context": ctx,
                    }
                )
        return keys, combos, out

    def decide(self, request: DisclosureRequest, register: Register) -> Decision:
        """Decide every requested category, for every distinct subject combination."""
        facts, subjects = facts_of(request)
        return self.decide_facts(facts, subjects, register)

    def decide_facts(
        self,
        facts: RequestFacts,
        subjects: Sequence[SubjectFacts],
        register: Register,
        count: int | None = None,
    ) -> Decision:
        """Decide on the public facts: what an auditor replaying the log calls.

        ``subjects`` lists each subject's facts (or, for an auditor, one per logged group);
        ``count`` is the number of people when it differs from ``len(subjects)``.
        Answers come from :attr:`cache` where it holds them (see :mod:`.cache`); the
        result is the same as :meth:`decide_uncached`'s.
        """
        cache = self.cache
        if cache is None:
            return self.decide_uncached(facts, subjects, register, count)
        register.organisation(facts.requester, field_name="requester")
        register.organisation(facts.holder, field_name="holder")
        combos = _group(subjects)
        keys = list(combos)
        total = len(subjects) if count is None else count
        base = cache.request_key(cache.generation(self.policy_hash, register), facts, total)
        categories = list(facts.categories)
        found: list[list[CategoryDecision | None]] = []
        missing: list[tuple[int, int]] = []
        for g, key in enumerate(keys):
            row: list[CategoryDecision | None] = []
            for j, cat in enumerate(categories):
                hit = cache.get((base, key, cat))
                if hit is None:
                    missing.append((g, j))
                row.append(hit)
            found.append(row)
        errors: list[str] = []
        if missing:
            principal = {"type": "Organisation", "id": facts.requester}
            contexts: dict[int, str] = {}
            head = self._context_head(facts)
            batch = []
            for g, j in missing:
                ctx = contexts.get(g)
                if ctx is None:
                    ctx = contexts[g] = self._context_tail(head, keys[g], total)
                batch.append(
                    {
                        "principal": principal,
                        "action": _ACTION,
                        "resource": self._resources[categories[j]],
                        "context": ctx,
                    }
                )
            results = self._evaluate(batch, register, errors)
            for (g, j), result in zip(missing, results, strict=True):
                before = len(errors)
                decided = self._judge(result, errors)
                found[g][j] = decided
                if result is not None and len(errors) == before:
                    cache.put((base, keys[g], categories[j]), decided)
        per_group = [
            {cat: d for cat, d in zip(categories, row, strict=True) if d is not None}
            for row in found
        ]
        return self._assemble(categories, keys, combos, per_group, errors)

    def decide_uncached(
        self,
        facts: RequestFacts,
        subjects: Sequence[SubjectFacts],
        register: Register,
        count: int | None = None,
    ) -> Decision:
        """:meth:`decide_facts` with every category evaluated by Cedar, no cache."""
        keys, combos, batch = self.cedar_requests(facts, subjects, register, count)
        errors: list[str] = []
        results = self._evaluate(batch, register, errors)
        categories = list(facts.categories)
        n = len(categories)
        per_group: list[dict[str, CategoryDecision]] = []
        for g in range(len(keys)):
            decided: dict[str, CategoryDecision] = {}
            for j, cat in enumerate(categories):
                decided[cat] = self._judge(results[g * n + j], errors)
            per_group.append(decided)
        return self._assemble(categories, keys, combos, per_group, errors)

    def _evaluate(
        self, batch: list[dict[str, Any]], register: Register, errors: list[str]
    ) -> list[Any]:
        """Cedar's answers to ``batch``, or None for each when the evaluator fails."""
        try:
            # No schema here: the policies were validated against it at load, the entities
            # when they were built, and every context value comes from a parsed, vocabulary-
            # checked request. Re-validating each request would cost ~45% of a decision.
            results: list[Any] = cedarpy.is_authorized_batch(
                batch, self._policies, self._entities_for(register)
            )
            if len(results) != len(batch):
                raise ValueError("Cedar returned a different number of answers")
        except Exception as e:  # fail closed on anything the evaluator throws
            errors.append(f"policy evaluation failed: {type(e).__name__}: {e}")
            return [None] * len(batch)
        return results

    def _judge(self, result: Any, errors: list[str]) -> CategoryDecision:
        if result is None:
            return _REFUSED_EVALUATION_ERROR
        decision = result.decision
        diag = result.diagnostics
        if decision is _NO_DECISION:
            errors.extend(diag.errors)
            return _REFUSED_NO_DECISION
        if diag.errors:
            # Cedar skips a policy that errors; a skipped forbid must never become an allow.
            errors.extend(diag.errors)
            return _REFUSED_EVALUATION_ERROR
        reasons = diag.reasons
        if len(reasons) == 1:
            known = self._one_reason.get((decision, reasons[0]))
            if known is not None:
                return known
        return self._judge_reasons(decision, reasons)

    def _judge_reasons(self, decision: Any, reasons: list[str]) -> CategoryDecision:
        """An answer without errors, Allow or Deny, judged by the policies it names."""
        if decision is _ALLOW:
            # Only permits that name their rule and legal basis may allow; anything else
            # among the reasons (or none at all) is a refusal.
            permits = self._named_permits
            if not reasons or any(p not in permits for p in reasons):
                return _REFUSED_UNNAMED_PERMIT
            return CategoryDecision("review", self._sorted({permits[p] for p in reasons}))
        forbids = self._forbids
        ids = {forbids[p] for p in reasons if p in forbids}
        return CategoryDecision("refused", self._sorted(ids) if ids else (DEFAULT_DENY,))

    def _sorted(self, ids: set[str]) -> tuple[str, ...]:
        if len(ids) == 1:
            return tuple(ids)
        order = self._order
        last = len(order)
        return tuple(sorted(ids, key=lambda i: order.get(i, last)))

    def _assemble(
        self,
        categories: list[str],
        keys: list[SubjectFacts],
        combos: dict[SubjectFacts, list[int]],
        per_group: list[dict[str, CategoryDecision]],
        errors: list[str],
    ) -> Decision:
        merged: dict[str, CategoryDecision] = {}
        if len(per_group) == 1:
            # One combination: each category's decision is that group's (its rules are
            # already sorted and distinct, as _judge made them).
            only = per_group[0]
            for cat in categories:
                merged[cat] = only[cat]
        else:
            for cat in categories:
                parts = [g[cat] for g in per_group]
                allowed = [p for p in parts if p.outcome == "review"]
                outcome: Outcome = "review" if allowed else "refused"
                ids = {r for p in (allowed or parts) for r in p.rules}
                merged[cat] = CategoryDecision(outcome, self._sorted(ids))
        all_ids: set[str] = set()
        for d in merged.values():
            all_ids.update(d.rules)
        rules = list(self._sorted(all_ids))
        groups = [
            {
                "subjects": combos[key],
                "facts": key.to_json(),
                "categories": {c: d.to_json() for c, d in per_group[g].items()},
            }
            for g, key in enumerate(keys)
        ]
        top: Outcome = (
            "review" if any(d.outcome == "review" for d in merged.values()) else "refused"
        )
        return Decision(
            outcome=top,
            categories=merged,
            rules=rules,
            reasons=[self._reasons[r] for r in rules],
            policy=self.policy_hash,
            groups=groups,
            errors=errors,
        )
