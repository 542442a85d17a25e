"""The firewall decision engine: the pledge and a local policy, evaluated by Cedar.

The schema and policy set are parsed and validated once, at load; an invalid policy, or
one that drops, alters or shadows a pledge rule, is refused with :class:`PolicyError` and
the engine never starts.

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
from typing import TYPE_CHECKING, Any, cast

import msgspec

from carewall.errors import PolicyError
from carewall.policy.cache import DecisionCache
from carewall.policy.cedar import cedar_ext as _cedar_ext
from carewall.policy.cedar import cedarpy
from carewall.policy.context import CedarContext
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
from carewall.policy.policy_set import (
    PLEDGE_AST_SHA256,
    RESERVED,
    Rule,
    check_local,
    check_pledge,
    package_text,
    static_policies,
)
from carewall.policy.register import Register
from carewall.policy.schema import ACTION, ENUM_TYPES, schema_text
from carewall.vocab import vocabulary

if TYPE_CHECKING:
    from carewall.policy.request import DisclosureRequest

__all__ = ["PLEDGE_AST_SHA256", "Engine", "Rule"]

_ACTION = {"type": "Action", "id": ACTION}


_ALLOW = "Allow"  # Cedar's decisions as its answers spell them; anything else is refused
_DENY = "Deny"


class _Diagnostics(msgspec.Struct):
    reason: list[str] = msgspec.field(default_factory=list)  # the policies that decided
    errors: list[str] = msgspec.field(default_factory=list)  # policies that failed, and why


class _Answer(msgspec.Struct):
    """One of Cedar's answers, as ``cedarpy.AuthzResult`` reads it (other fields ignored)."""

    decision: str
    diagnostics: _Diagnostics = msgspec.field(default_factory=_Diagnostics)


# Cedar's answers are JSON text; cedarpy's wrapper reads each with json.loads into an
# AuthzResult. The same fields, read in one typed pass: anything else (a missing decision,
# errors that are not strings) is a ValidationError, so the whole batch fails closed.
_read_answers = msgspec.json.Decoder(list[_Answer]).decode
_REFUSED_EVALUATION_ERROR = CategoryDecision("refused", (EVALUATION_ERROR,))
_REFUSED_NO_DECISION = CategoryDecision("refused", (NO_DECISION,))
_REFUSED_UNNAMED_PERMIT = CategoryDecision("refused", (UNNAMED_PERMIT,))
# Each group's answers, one per category of the request, in the request's order.
_Rows = list[list[CategoryDecision]]


def _group(subjects: Sequence[SubjectFacts]) -> dict[SubjectFacts, list[int]]:
    """Each distinct subject combination, with the positions of the subjects that have it."""
    if len(subjects) == 1:  # the usual request
        return {subjects[0]: [0]}
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
        pledge_rules = check_pledge(pledge)
        local_rules = check_local(local)
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
        for cedar_id, p in static_policies(combined, "policy").items():
            if p.get("annotations", {}).get("id") != self._by_cedar_id[cedar_id].id:
                raise PolicyError(
                    "rule ids could not be matched to Cedar's", field="policy", fix="report this"
                )
        self._order = {rid: i for i, rid in enumerate([*self.rule_ids, *sorted(RESERVED)])}
        self._known = frozenset(self._order)
        self._reasons = {
            r.id: r.rationale or f"Permitted by {r.id} (legal basis {r.legal_basis})."
            for r in self.rules
        } | BUILTIN_REASONS
        self._policies = cedarpy.PolicySet.from_str(combined)
        self._schema = cedarpy.Schema.from_str(schema_text())
        self._resources = {c: {"type": "Category", "id": c} for c in vocabulary()["category"]}
        self._contexts = CedarContext()
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
        # Keyed on Cedar's id alone, one table per decision.
        self._one_allow = {cid: self._judge_reasons(_ALLOW, [cid]) for cid in self._by_cedar_id}
        self._one_deny = {cid: self._judge_reasons(_DENY, [cid]) for cid in self._by_cedar_id}
        self._entities: tuple[Register, Any] | None = None
        # Decisions already made under this policy; None turns caching off.
        self.cache: DecisionCache | None = DecisionCache()

    @classmethod
    def load(cls, local_policy: str | None = None, *, pledge: str | None = None) -> Engine:
        """The packaged pledge plus ``local_policy`` (Cedar text; None = packaged default).

        ``pledge`` replaces the packaged pledge text (for tests and auditors); it must still
        hold the contract's rules verbatim.
        """
        local = package_text("default.cedar") if local_policy is None else local_policy
        return cls(cls.pledge_text() if pledge is None else pledge, local)

    @staticmethod
    def pledge_text() -> str:
        """The packaged ``pledge.cedar``."""
        return package_text("pledge.cedar")

    @staticmethod
    def default_text() -> str:
        """The packaged default local policy, ``default.cedar``."""
        return package_text("default.cedar")

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
        return self._contexts.as_dict(facts, subject, count)

    def context_json(self, facts: RequestFacts, subject: SubjectFacts, count: int) -> str:
        """``json.dumps(self.context(facts, subject, count))``, character for character."""
        return self._contexts.as_json(facts, subject, count)

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
        total = len(subjects) if count is None else count
        every = range(len(facts.categories))
        return keys, combos, self._batch(facts, total, keys, [(g, every) for g in range(len(keys))])

    def _batch(
        self,
        facts: RequestFacts,
        total: int,
        keys: list[SubjectFacts],
        asks: Sequence[tuple[int, Sequence[int]]],
    ) -> list[dict[str, Any]]:
        """The Cedar requests for ``asks``: (group, positions in the request's categories),
        in order."""
        principal = {"type": "Organisation", "id": facts.requester}
        resources = self._resources
        categories = facts.categories
        head = self._contexts.head(facts)
        tail = self._contexts.tail
        out = []
        for g, positions in asks:
            ctx = tail(head, keys[g], total)
            for j in positions:
                out.append(
                    {
                        "principal": principal,
                        "action": _ACTION,
                        "resource": resources[categories[j]],
                        "context": ctx,
                    }
                )
        return out

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
        categories = facts.categories
        every = range(len(categories))
        found: list[list[CategoryDecision | None]] = []
        asks: list[tuple[int, Sequence[int]]] = []  # (group, the positions Cedar must answer)
        for g, key in enumerate(keys):
            row = cache.lookup(base, key, categories)
            if row is None:  # nothing held for this combination
                found.append([None] * len(categories))
                asks.append((g, every))
            else:
                found.append(row)
                gaps = [j for j, d in enumerate(row) if d is None]
                if gaps:
                    asks.append((g, gaps))
        errors: list[str] = []
        if asks:
            batch = self._batch(facts, total, keys, asks)
            results = self._evaluate(batch, register, errors)
            i = 0
            for g, js in asks:
                row = found[g]
                clean: dict[str, CategoryDecision] = {}
                for j in js:
                    result = results[i]
                    i += 1
                    before = len(errors)
                    decided = row[j] = self._judge(result, errors)
                    if result is not None and len(errors) == before:
                        clean[categories[j]] = decided
                if clean:
                    cache.put(base, keys[g], clean)
        # Every category of every group is now decided.
        return self._assemble(categories, combos, cast(_Rows, found), errors)

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
        categories = facts.categories
        n = len(categories)
        judge = self._judge
        rows = [[judge(r, errors) for r in results[g * n : (g + 1) * n]] for g in range(len(keys))]
        return self._assemble(categories, combos, rows, errors)

    def _evaluate(
        self, batch: list[dict[str, Any]], register: Register, errors: list[str]
    ) -> list[_Answer | None]:
        """Cedar's answers to ``batch``, or None for each when the evaluator fails.

        The call is ``cedarpy.is_authorized_batch`` without its Python wrapper: every
        request's context is already JSON text (so the wrapper would pass it on as it is),
        and the answers are read by :data:`_read_answers` instead of one ``json.loads`` and
        two objects each (a tenth of a cold decision). cedarpy is pinned; a differential
        test holds these answers equal to the wrapper's.
        """
        try:
            # No schema here: the policies were validated against it at load, the entities
            # when they were built, and every context value comes from a parsed, vocabulary-
            # checked request. Re-validating each request would cost ~45% of a decision.
            texts = _cedar_ext.is_authorized_batch(
                batch, self._policies, self._entities_for(register)._inner, None, False
            )
            results: list[_Answer | None] = list(_read_answers("[" + ",".join(texts) + "]"))
            if len(results) != len(batch):
                raise ValueError("Cedar returned a different number of answers")
        except Exception as e:  # fail closed on anything the evaluator throws
            errors.append(f"policy evaluation failed: {type(e).__name__}: {e}")
            return [None] * len(batch)
        return results

    def _judge(self, result: _Answer | None, errors: list[str]) -> CategoryDecision:
        if result is None:
            return _REFUSED_EVALUATION_ERROR
        decision = result.decision
        diag = result.diagnostics
        if decision != _ALLOW and decision != _DENY:  # NoDecision, or anything unforeseen
            errors.extend(diag.errors)
            return _REFUSED_NO_DECISION
        if diag.errors:
            # Cedar skips a policy that errors; a skipped forbid must never become an allow.
            errors.extend(diag.errors)
            return _REFUSED_EVALUATION_ERROR
        reasons = diag.reason
        if len(reasons) == 1:
            one = self._one_allow if decision == _ALLOW else self._one_deny
            known = one.get(reasons[0])
            if known is not None:
                return known
        return self._judge_reasons(decision, reasons)

    def _judge_reasons(self, decision: str, reasons: list[str]) -> CategoryDecision:
        """An answer without errors, Allow or Deny, judged by the policies it names."""
        if decision == _ALLOW:
            # Only permits that name their rule and legal basis may allow; anything else
            # among the reasons (or none at all) is a refusal.
            permits = self._named_permits
            if not reasons or any(p not in permits for p in reasons):
                return _REFUSED_UNNAMED_PERMIT
            return CategoryDecision("review", tuple(self._sorted({permits[p] for p in reasons})))
        forbids = self._forbids
        ids = {forbids[p] for p in reasons if p in forbids}
        return CategoryDecision("refused", tuple(self._sorted(ids)) if ids else (DEFAULT_DENY,))

    def _sorted(self, ids: set[str]) -> list[str]:
        """``ids`` in the policy's rule order (an id it does not know, last)."""
        order = self._order
        if ids <= self._known:
            return sorted(ids, key=order.__getitem__)
        last = len(order)
        return sorted(ids, key=lambda i: order.get(i, last))

    def _assemble(
        self,
        categories: Sequence[str],
        combos: dict[SubjectFacts, list[int]],
        rows: _Rows,
        errors: list[str],
    ) -> Decision:
        """The decision from each group's answers (``rows``: one per combination, in
        ``combos``' order; each in ``categories``' order)."""
        if len(rows) == 1:
            # One combination: each category's decision is that group's (its rules are
            # already sorted and distinct, as _judge made them).
            merged = dict(zip(categories, rows[0], strict=True))
        else:
            merged = {}
            for j, cat in enumerate(categories):
                parts = [row[j] for row in rows]
                allowed = [p for p in parts if p.outcome == "review"]
                outcome: Outcome = "review" if allowed else "refused"
                ids = {r for p in (allowed or parts) for r in p.rules}
                merged[cat] = CategoryDecision(outcome, tuple(self._sorted(ids)))
        all_ids: set[str] = set()
        top: Outcome = "refused"
        for d in merged.values():
            all_ids.update(d.rules)
            if d.outcome == "review":
                top = "review"
        rules = self._sorted(all_ids)
        groups = []
        for (key, at), row in zip(combos.items(), rows, strict=True):
            answers = {}
            for j, c in enumerate(categories):
                answers[c] = row[j].to_json()
            groups.append({"subjects": at, "facts": key.to_json(), "categories": answers})
        reasons = self._reasons
        return Decision(
            outcome=top,
            categories=merged,
            rules=rules,
            reasons=[reasons[r] for r in rules],
            policy=self.policy_hash,
            groups=groups,
            errors=errors,
        )
