"""Coherent v2 logs for the ``carewall audit`` tests (serving them: ``audit_serving``).

:class:`LogBuilder` writes the entries a carewall instance would, with the service's own
entry builders (:mod:`carewall.service.logentries`) and release planning, deciding every
request with the packaged engine; :func:`full_log` is a log holding every entry kind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from carewall.entries import NoticeEntry
from carewall.ledger.subjects import SubjectTree, subjects_root
from carewall.policy import Engine, Organisation, Register
from carewall.policy.facts import RequestFacts, SubjectFacts
from carewall.service import logentries as le
from carewall.service.release import plan_release

ORIGIN = "carewall.test/audit-log"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

ORGS: list[tuple[str, str, str]] = [
    ("met-police", "Metropolitan Police Service", "police"),
    ("islington-council", "Islington Council", "local_authority"),
    ("st-marys-primary", "St Mary's Primary School", "education"),
    ("whittington-health", "Whittington Health NHS Trust", "health"),
    ("home-office-ie", "Home Office Immigration Enforcement", "immigration_enforcement"),
    ("old-council", "Old District Council", "local_authority"),
]
REVIEWERS: list[tuple[str, str, list[str]]] = [
    ("dpo-st-marys", "st-marys-primary", ["release_reviewer"]),
    ("head-st-marys", "st-marys-primary", ["appeal_reviewer"]),
    ("ig-whittington", "whittington-health", ["release_reviewer"]),
    ("caldicott-whittington", "whittington-health", ["appeal_reviewer"]),
    ("temp-st-marys", "st-marys-primary", ["release_reviewer"]),
]
# A valid local policy that differs from the default: one more permit.
EXTRA_RULE = """
@id("local/pupil-transfer-attendance")
@legal_basis("education_pupil_information_regs_2005")
@rationale("A school receiving a pupil may have the pupil's attendance record.")
permit (principal, action == Action::"disclose", resource)
when
{
  principal.function == Function::"education" &&
  context.purpose == Purpose::"pupil_transfer" &&
  resource == Category::"attendance"
};
"""


def S(child: bool = False, victim: bool = False, consent: bool = False) -> SubjectFacts:
    return SubjectFacts(child, victim, consent)


@dataclass
class _Req:
    doc: dict[str, Any]
    claimed: list[SubjectFacts]
    commitments: list[str]
    decision: dict[str, Any]
    reviewer: str | None = None
    deferred: list[str] = field(default_factory=list)

    def notice(self, rid: str, position: int, time: str) -> NoticeEntry:
        """The notice to the subject at ``position``, with its path to the subjects root."""
        tree = SubjectTree(self.commitments)
        return le.notice_entry(
            rid, self.commitments[position], position, tree.proof(position), time
        )


class LogBuilder:
    """Writes the entries of a carewall instance, as its service would."""

    def __init__(self, local_policy: str | None = None) -> None:
        self.engine = Engine.load(local_policy)
        self.entries: list[dict[str, Any]] = []
        self.groups: list[int] = []  # per entry: which append (one transaction) wrote it
        self.context: list[tuple[Engine, Register]] = []  # per entry: policy and register
        self.orgs: dict[str, Organisation] = {}
        self.clock = T0
        self.requests: dict[str, _Req] = {}
        self._register: Register | None = None

    # ----- plumbing --------------------------------------------------------------------

    def now(self) -> str:
        self.clock += timedelta(minutes=7)
        return le.rfc3339(self.clock)

    def add(self, *entries: Any) -> int:
        first = len(self.entries)
        group = self.groups[-1] + 1 if self.groups else 0
        self.entries += [dict(e) for e in entries]
        self.groups += [group] * len(entries)
        self.context += [(self.engine, self.register())] * len(entries)
        return first

    def register(self) -> Register:
        if self._register is None:
            self._register = Register(dict(self.orgs), {})
        return self._register

    def functions(self) -> dict[str, str]:
        return {k: o.function for k, o in self.orgs.items()}

    # ----- register and policy ---------------------------------------------------------

    def policy(self, change: Literal["init", "update"] = "update") -> int:
        e = self.engine
        return self.add(
            le.policy_entry(
                policy=e.policy_hash,
                pledge=e.pledge_hash,
                rules=e.rule_ids,
                change=change,
                text=e.local_text,
                time=self.now(),
            )
        )

    def set_policy(self, text: str) -> int:
        self.engine = Engine.load(text)
        return self.policy("update")

    def organisation(
        self, org_id: str, name: str, function: str, change: Literal["add", "retire"] = "add"
    ) -> int:
        if change == "add":
            self.orgs[org_id] = Organisation(org_id, name, function)
        else:
            self.orgs.pop(org_id)
        self._register = None
        return self.add(le.organisation_entry(org_id, name, function, change, self.now()))

    def reviewer(
        self,
        rev_id: str,
        org: str,
        roles: Sequence[str],
        change: Literal["add", "update", "retire"] = "add",
    ) -> int:
        return self.add(le.reviewer_entry(rev_id, org, roles, change, self.now()))

    def init(self) -> LogBuilder:
        """The first transaction: the policy, then the whole register."""
        self.policy("init")
        for org in ORGS:
            self.organisation(*org)
        for rev in REVIEWERS:
            self.reviewer(*rev)
        self.groups = [0] * len(self.entries)
        return self

    # ----- the lifecycle ---------------------------------------------------------------

    def request(
        self,
        requester: str,
        holder: str,
        purpose: str,
        legal_basis: str,
        categories: Sequence[str],
        subjects: Sequence[SubjectFacts],
        *,
        other_bases: Sequence[str] = (),
        offence: str | None = None,
        court_order: bool = False,
        onward: Sequence[str] = (),
    ) -> str:
        rid = "r" + hashlib.sha256(f"request-{len(self.requests)}".encode()).hexdigest()[:20]
        doc = {
            "holder": holder,
            "requester": requester,
            "purpose": purpose,
            "legal_basis": legal_basis,
            "other_bases": list(other_bases),
            "offence": offence,
            "court_order": {"reference": "x"} if court_order else None,
            "onward_recipients": list(onward),
            "categories": list(categories),
            "subjects": [{"is_victim_or_witness": s.is_victim_or_witness} for s in subjects],
        }
        facts = RequestFacts(
            requester, holder, purpose, legal_basis, tuple(other_bases), offence,
            court_order, tuple(onward), tuple(categories),
        )  # fmt: skip
        claimed = list(subjects)
        decision = self.engine.decide_facts(facts, claimed, self.register()).to_json()
        commitments = [
            hashlib.sha256(f"{rid}/{i}".encode()).hexdigest() for i in range(len(claimed))
        ]
        t = self.now()
        self.add(
            le.request_entry(doc, rid, self.functions(), claimed, subjects_root(commitments), t),
            le.decision_entry(rid, decision, t),
        )
        self.requests[rid] = _Req(doc, claimed, commitments, decision)
        return rid

    def _facts(self, rid: str) -> RequestFacts:
        d = self.requests[rid].doc
        return RequestFacts(
            d["requester"], d["holder"], d["purpose"], d["legal_basis"], tuple(d["other_bases"]),
            d["offence"], d["court_order"] is not None, tuple(d["onward_recipients"]),
            tuple(d["categories"]),
        )  # fmt: skip

    def _release(
        self,
        rid: str,
        reviewer: str,
        held: Sequence[SubjectFacts] | None,
        defer: bool,
        leading: dict[str, Any] | None,
    ) -> None:
        req = self.requests[rid]
        held = (
            list(held)
            if held is not None
            else [S(c.is_child, c.is_victim_or_witness) for c in req.claimed]
        )
        corrected = sum(1 for a, b in zip(req.claimed, held, strict=True) if a != b)
        fresh = self.engine.decide_facts(self._facts(rid), held, self.register()).to_json()
        plan = plan_release(req.decision, fresh, len(held))
        assert plan, "the builder was asked to release what the policy refuses"
        groups: dict[tuple[SubjectFacts, tuple[str, ...]], list[int]] = {}
        for positions, cats in plan:
            for p in positions:
                groups.setdefault((held[p], tuple(cats)), []).append(p)
        t = self.now()
        released = sorted({c for _, cats in plan for c in cats})
        review = le.review_entry(
            rid, "released", reviewer, released, t, confirmed=held, corrected=corrected
        )
        # after an overturned appeal, the appeal's entry comes first, then the review
        out: list[Any] = [leading, review] if leading else [review]
        for (facts, group_cats), positions in groups.items():
            out.append(
                le.release_entry(
                    req.doc,
                    rid,
                    self.functions(),
                    categories=group_cats,
                    facts=facts,
                    count=len(positions),
                    reviewer=reviewer,
                    policy=self.engine.policy_hash,
                    time=t,
                )
            )
        order = [p for positions in groups.values() for p in positions]
        if defer:
            until = (self.clock.date() + timedelta(days=30)).isoformat()
            out.append(le.deferral_entry(rid, "deferred", reviewer, len(order), until, t))
            req.deferred = [req.commitments[p] for p in order]
        else:
            out += [req.notice(rid, p, t) for p in order]
        req.reviewer = reviewer
        self.add(*out)

    def review(
        self,
        rid: str,
        reviewer: str,
        release: bool = True,
        *,
        held: Sequence[SubjectFacts] | None = None,
        defer: bool = False,
    ) -> None:
        if release:
            self._release(rid, reviewer, held, defer, None)
        else:
            self.add(le.review_entry(rid, "refused", reviewer, [], self.now()))
            self.requests[rid].reviewer = reviewer

    def appeal(self, rid: str, by: Literal["requester", "subject"]) -> None:
        self.add(le.appeal_entry(rid, by, "lodged", self.now()))

    def decide_appeal(
        self,
        rid: str,
        by: Literal["requester", "subject"],
        reviewer: str,
        uphold: bool,
        *,
        defer: bool = False,
    ) -> None:
        stage: Literal["upheld", "overturned"] = "upheld" if uphold else "overturned"
        entry = dict(le.appeal_entry(rid, by, stage, self.now(), reviewer))
        if not uphold and by == "requester":
            self._release(rid, reviewer, None, defer, entry)
        else:
            self.add(entry)

    def renew(self, rid: str, reviewer: str) -> None:
        req = self.requests[rid]
        until = (self.clock.date() + timedelta(days=60)).isoformat()
        self.add(le.deferral_entry(rid, "renewed", reviewer, len(req.deferred), until, self.now()))

    def lift(self, rid: str, reviewer: str) -> None:
        req = self.requests[rid]
        t = self.now()
        self.add(
            le.deferral_entry(rid, "lifted", reviewer, len(req.deferred), None, t),
            *[req.notice(rid, req.commitments.index(c), t) for c in req.deferred],
        )

    def withdraw(self, rid: str, by: str) -> None:
        self.add(le.withdrawal_entry(rid, by, self.now()))

    def deletion(self, holder: str) -> None:
        self.add(
            {
                "v": 1,
                "kind": "deletion",
                "time": self.now(),
                "holder": holder,
                "categories": ["attendance", "name"],
                "records": 12,
                "certificate": "sha256:" + hashlib.sha256(b"certificate").hexdigest(),
            }
        )

    def agreement(self, action: str, **terms: Any) -> dict[str, Any]:
        """An ``agreement`` entry (the hospital–police agreement unless ``terms`` say)."""
        entry = {
            "v": 1, "kind": "agreement", "time": self.now(),
            "agreement": "whittington-met-police-isa", "action": action,
            "holder": "whittington-health", "holder_function": "health",
            "recipient": "met-police", "recipient_function": "police",
            "purpose": "prevention_detection_of_crime",
            "legal_basis": "dpa2018_sch2_p1_para2_crime", "other_bases": [], "offence": None,
            "onward_recipients": [], "categories": ["address", "name"], "children": True,
            "victims_or_witnesses": False, "consent_required": False,
            "start": "2026-01-01", "end": None, "rules": [], "policy": self.engine.policy_hash,
            "text": None, "releases": None, "subjects": None, "released": [], "due": None,
            "certificate": None,
        }  # fmt: skip
        entry.update(terms)
        self.add(entry)
        return entry


def full_log() -> LogBuilder:
    """A coherent log holding every entry kind, every change and every lifecycle path."""
    b = LogBuilder().init()
    child = b.request(
        "islington-council", "st-marys-primary", "safeguarding_child", "children_act_1989_s47",
        ["name", "address", "attendance"], [S(child=True), S(child=True, victim=True)],
    )  # fmt: skip
    b.review(child, "dpo-st-marys")
    immigration = b.request(
        "home-office-ie", "st-marys-primary", "immigration_enforcement",
        "dpa2018_sch2_p1_para4_immigration", ["name", "address", "nationality", "health_record"],
        [S()], offence="immigration_act_1971_s24",
    )  # fmt: skip
    b.appeal(immigration, "requester")
    suspect = b.request(
        "met-police", "st-marys-primary", "prevention_detection_of_crime",
        "dpa2018_sch2_p1_para2_crime", ["name", "address"], [S(), S()], offence="theft_act_1968_s1",
    )  # fmt: skip
    b.review(suspect, "dpo-st-marys", release=False)
    b.appeal(suspect, "requester")
    b.decide_appeal(suspect, "requester", "head-st-marys", uphold=False, defer=True)
    b.renew(suspect, "dpo-st-marys")
    b.lift(suspect, "dpo-st-marys")
    withdrawn = b.request(
        "met-police", "whittington-health", "prevention_detection_of_crime",
        "dpa2018_sch2_p1_para2_crime", ["name"], [S()], offence="theft_act_1968_s1",
    )  # fmt: skip
    b.withdraw(withdrawn, "met-police")
    care = b.request(
        "whittington-health", "whittington-health", "direct_care",
        "uk_gdpr_6_1_e_9_2_h_direct_care", ["health_record"], [S(consent=True)],
    )  # fmt: skip
    b.review(care, "ig-whittington", held=[S(consent=True)])
    b.appeal(care, "subject")
    b.decide_appeal(care, "subject", "caldicott-whittington", uphold=True)
    b.appeal(child, "subject")
    b.decide_appeal(child, "subject", "head-st-marys", uphold=False)
    pupil = b.request(
        "islington-council", "st-marys-primary", "safeguarding_child", "children_act_1989_s47",
        ["name"], [S(child=True)],
    )  # fmt: skip
    b.review(pupil, "temp-st-marys", release=False)
    b.reviewer("temp-st-marys", "st-marys-primary", ["appeal_reviewer"], "update")
    b.decide_appeal(immigration, "requester", "temp-st-marys", uphold=True)
    b.appeal(pupil, "requester")
    b.decide_appeal(pupil, "requester", "head-st-marys", uphold=True)
    b.reviewer("temp-st-marys", "st-marys-primary", ["appeal_reviewer"], "retire")
    b.organisation("old-council", "Old District Council", "local_authority", "retire")
    b.deletion("st-marys-primary")
    b.agreement("registered")
    b.agreement("withdrawn", releases=0, subjects=0)
    b.set_policy(b.engine.local_text + EXTRA_RULE)
    transfer = b.request(
        "st-marys-primary", "st-marys-primary", "pupil_transfer",
        "education_pupil_information_regs_2005", ["attendance"], [S(child=True)],
    )  # fmt: skip
    b.review(transfer, "dpo-st-marys")
    # Audited a while later: a notice left out of the log is overdue by its last entry.
    b.clock += timedelta(days=8)
    b.request(
        "home-office-ie", "whittington-health", "immigration_enforcement",
        "dpa2018_sch2_p1_para4_immigration", ["address"], [S()],
        offence="immigration_act_1971_s24",
    )  # fmt: skip
    return b


def busy_log(requests: int = 200) -> LogBuilder:
    """A log of several bundles: requests decided, every third reviewed and released."""
    b = LogBuilder().init()
    for i in range(requests):
        rid = b.request(
            "met-police", "whittington-health", "prevention_detection_of_crime",
            "dpa2018_sch2_p1_para2_crime", ["name", "address"], [S()],
            offence="theft_act_1968_s1",
        )  # fmt: skip
        if i % 3 == 0:
            b.review(rid, "ig-whittington")
    return b


def released_pair(*, defer: bool = False) -> tuple[LogBuilder, str]:
    """A log holding one police request to the hospital about two people, released by its
    reviewer (the notices written, or their deferral)."""
    b = LogBuilder().init()
    rid = b.request(
        "met-police", "whittington-health", "prevention_detection_of_crime",
        "dpa2018_sch2_p1_para2_crime", ["name", "address"], [S(), S()],
        offence="theft_act_1968_s1",
    )  # fmt: skip
    b.review(rid, "ig-whittington", defer=defer)
    return b, rid
