"""A dishonest operator smuggling releases past ``carewall audit``.

The operator holds the log key, so every log here is signed and every entry is
schema-valid and canonical. Each test writes one sequence the service itself would never
write and asserts what the auditor SHOULD do: fail the audit with a finding naming the
entry at fault. Logs are served in process (:func:`audit_serving.audit_in_memory`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from audit_serving import MemoryLog, audit_in_memory, recipient_certificate
from audit_support import LogBuilder, S

from carewall.audit import AuditReport
from carewall.policy.facts import SubjectFacts
from carewall.service import logentries as le

Entries = list[dict[str, Any]]

THEFT = "theft_act_1968_s1"
CRIME = "dpa2018_sch2_p1_para2_crime"


def flagged(report: AuditReport, *indices: int) -> bool:
    """Whether the audit failed with a finding at (or naming) one of ``indices``."""
    if report.ok:
        return False
    for f in report.findings:
        for i in indices:
            if f.index == i or f"entry {i}" in f.message:
                return True
    return False


def lines(report: AuditReport) -> list[str]:
    return [f.line() for f in report.findings]


def forge_review(
    b: LogBuilder,
    rid: str,
    reviewer: str,
    held: Sequence[SubjectFacts],
    releases: Sequence[tuple[SubjectFacts, Sequence[str], int]],
) -> tuple[int, list[int]]:
    """A released review with the holder's record ``held`` and hand-written ``releases``
    (facts, categories, count), then one notice per released subject. Returns the review's
    index and the releases' indices."""
    req = b.requests[rid]
    t = b.now()
    corrected = sum(1 for a, c in zip(req.claimed, held, strict=True) if a != c)
    approved = sorted({c for _, cats, _ in releases for c in cats})
    out: list[Any] = [
        le.review_entry(rid, "released", reviewer, approved, t, confirmed=held, corrected=corrected)
    ]
    for facts, cats, count in releases:
        out.append(
            le.release_entry(
                req.doc,
                rid,
                b.functions(),
                categories=sorted(cats),
                facts=facts,
                count=count,
                reviewer=reviewer,
                policy=b.engine.policy_hash,
                time=t,
            )
        )
    told = sum(n for _, _, n in releases)
    out += [req.notice(rid, p, t) for p in range(told)]
    first = b.add(*out)
    return first, list(range(first + 1, first + 1 + len(releases)))


def deletion(b: LogBuilder, holder: str, categories: list[str], certificate: str) -> int:
    return b.add(
        {
            "v": 1,
            "kind": "deletion",
            "time": b.now(),
            "holder": holder,
            "categories": categories,
            "records": 3,
            "certificate": certificate,
        }
    )


def cert(name: str) -> str:
    """A deletion certificate the recipient (met-police) signed, published, by its hash."""
    return recipient_certificate(name)


# ----- a decision permits per subject, not for the request as a whole --------------------


@pytest.mark.parametrize(
    "held_victim",
    [
        pytest.param(S(), id="victims-recorded-as-not-victims"),
        pytest.param(S(victim=True, consent=True), id="consent-nobody-claimed"),
    ],
)
def test_victims_data_released_to_police_beyond_what_the_decision_permitted_them(
    held_victim: SubjectFacts,
) -> None:
    """Police ask for one suspect and three victims or witnesses (no consent claimed, no
    court order). The decision permits name and address for the suspect only; the
    victims are refused by pledge/no-victim-witness-referral. The holder's "record" then
    makes the victims releasable, and all four go: the service's release plan intersects
    each subject's stored decision with the fresh one, so it releases one person."""
    b = LogBuilder().init()
    claimed = [S(), S(victim=True), S(victim=True), S(victim=True)]
    rid = b.request(
        "met-police",
        "whittington-health",
        "prevention_detection_of_crime",
        CRIME,
        ["name", "address"],
        claimed,
        offence=THEFT,
    )
    assert b.entries[-1]["outcome"] == "review"
    # the decision permits nothing to a claimed victim: pledge/no-victim-witness-referral
    alone = b.engine.decide_facts(b._facts(rid), [S(victim=True)], b.register())
    assert alone.permitted == [] and "pledge/no-victim-witness-referral" in alone.rules
    held = [S(), held_victim, held_victim, held_victim]
    releases = [(S(), ["address", "name"], 1)]
    if held_victim == S():
        releases = [(S(), ["address", "name"], 4)]
    else:
        releases.append((held_victim, ["address", "name"], 3))
    review, rels = forge_review(b, rid, "ig-whittington", held, releases)
    report = audit_in_memory(b.entries)
    assert flagged(report, review, *rels), lines(report)


def test_a_policy_loosened_after_the_decision_widens_the_release() -> None:
    """The decision (policy P1) permits education_record for the child suspect only; a
    policy update (P2) then permits it for adults, and the adult's education record goes
    out under the old decision. The service never widens a release by a later policy
    (carewall.service.release: a policy loosened since cannot widen what the reviewer
    saw); contract §6: only categories the decision permitted *for those subjects*."""
    child_rule = (
        '\n@id("local/police-child-education")\n'
        f'@legal_basis("{CRIME}")\n'
        '@rationale("Police may have a child suspect\'s education record.")\n'
        'permit (principal, action == Action::"disclose", resource)\n'
        'when { principal.function == Function::"police" && '
        'context.purpose == Purpose::"prevention_detection_of_crime" && context.child && '
        'resource == Category::"education_record" };\n'
    )
    p1 = LogBuilder().engine.local_text + child_rule
    p2 = p1.replace("context.child && resource", "resource")
    b = LogBuilder(p1).init()
    rid = b.request(
        "met-police",
        "st-marys-primary",
        "prevention_detection_of_crime",
        CRIME,
        ["name", "education_record"],
        [S(child=True), S()],
        offence=THEFT,
    )
    assert b.entries[-1]["categories"]["education_record"]["outcome"] == "review"
    adult = b.engine.decide_facts(b._facts(rid), [S()], b.register())
    assert adult.permitted == ["name"]  # P1 refuses the adult's education record
    b.set_policy(p2)
    both = ["education_record", "name"]
    review, rels = forge_review(
        b, rid, "dpo-st-marys", [S(child=True), S()], [(S(child=True), both, 1), (S(), both, 1)]
    )
    report = audit_in_memory(b.entries)
    assert flagged(report, review, rels[1]), lines(report)


# ----- deletion certificates that do not answer the request to destroy -------------------


def _agreement_release(b: LogBuilder) -> None:
    rid = b.request(
        "met-police",
        "whittington-health",
        "prevention_detection_of_crime",
        CRIME,
        ["name", "address"],
        [S()],
        offence=THEFT,
    )
    b.review(rid, "ig-whittington")


def test_a_deletion_logged_before_the_release_proves_its_destruction() -> None:
    """docs/clean.md: the certificate is issued on or after the withdrawal's day and its
    deletion entry is written with the destroyed entry. Here a deletion logged before the
    agreement (and before anything was released under it) is cited as the proof."""
    old = cert("an old, unrelated deletion")
    b = LogBuilder().init()
    stale = deletion(b, "met-police", ["address", "name"], old)
    b.agreement("registered")
    _agreement_release(b)
    counts = {"releases": 1, "subjects": 1, "released": ["address", "name"], "due": "2026-04-30"}
    b.agreement("withdrawn", **counts)
    b.agreement("destroyed", **counts, certificate=old)
    destroyed = len(b.entries) - 1
    report = audit_in_memory(b.entries)
    assert flagged(report, destroyed, stale), lines(report)


def test_one_deletion_certificate_answers_two_agreements() -> None:
    """docs/clean.md rule 5: a certificate is not registered twice. One deletion is cited
    for the destruction asked by two withdrawals."""
    one = cert("one deletion")
    b = LogBuilder().init()
    second = {"agreement": "whittington-met-police-isa-2", "categories": ["contact_details"]}
    b.agreement("registered")
    b.agreement("registered", **second)
    _agreement_release(b)
    counts = {"releases": 1, "subjects": 1, "released": ["address", "name"], "due": "2026-04-30"}
    b.agreement("withdrawn", **counts)
    b.agreement("withdrawn", **second, **counts)
    deletion(b, "met-police", ["address", "name"], one)
    b.agreement("destroyed", **counts, certificate=one)
    b.agreement("destroyed", **second, **counts, certificate=one)
    again = len(b.entries) - 1
    report = audit_in_memory(b.entries)
    assert flagged(report, again), lines(report)


# ----- requests the service refuses as input, logged as if decided -----------------------


@pytest.mark.parametrize(
    ("basis", "others"),
    [pytest.param(CRIME, [], id="main-basis"), pytest.param("consent", [CRIME], id="other")],
)
def test_the_crime_exemption_without_an_offence(basis: str, others: list[str]) -> None:
    """Contract §1: an offence is required with the crime exemption (main or other basis);
    it is what pledge/no-immigration-offence reads. A request logged with the exemption and
    no offence is decided and released, and no pledge rule can see an immigration offence."""
    b = LogBuilder().init()
    # (with the exemption as another basis: a consenting witness, as the police may ask)
    holder_consents = [S(victim=True, consent=True)] if others else [S()]
    rid = b.request(
        "met-police",
        "whittington-health",
        "prevention_detection_of_crime",
        basis,
        ["name", "address"],
        holder_consents,
        other_bases=others,
        offence=None,
    )
    request = len(b.entries) - 2
    assert b.entries[request]["kind"] == "request" and b.entries[request]["offence"] is None
    assert b.entries[-1]["outcome"] == "review"
    b.review(rid, "ig-whittington", held=holder_consents)
    assert b.entries[-2]["kind"] == "release"
    report = audit_in_memory(b.entries)
    assert flagged(report, request, request + 1), lines(report)


def test_the_court_order_basis_without_a_court_order() -> None:
    """Contract §3: the court_order basis (main or other) needs the court order. The log
    states the basis with ``court_order: false`` and releases."""
    b = LogBuilder().init()
    rid = b.request(
        "islington-council",
        "whittington-health",
        "safeguarding_child",
        "children_act_1989_s47",
        ["name"],
        [S(child=True)],
        other_bases=["court_order"],
    )
    request = len(b.entries) - 2
    b.review(rid, "ig-whittington")
    assert b.entries[-2]["kind"] == "release" and b.entries[-2]["court_order"] is False
    report = audit_in_memory(b.entries)
    assert flagged(report, request, request + 1), lines(report)


# ----- caught: kept so that they stay caught ---------------------------------------------


def test_a_release_to_a_requester_retired_between_decision_and_review() -> None:
    b = LogBuilder().init()
    b.organisation("met-police-old", "Metropolitan Police Old Unit", "police")
    rid = b.request(
        "met-police-old",
        "whittington-health",
        "prevention_detection_of_crime",
        CRIME,
        ["name"],
        [S()],
        offence=THEFT,
    )
    req = b.requests[rid]
    functions = b.functions()
    b.organisation("met-police-old", "Metropolitan Police Old Unit", "police", "retire")
    t = b.now()
    review = b.add(
        le.review_entry(rid, "released", "ig-whittington", ["name"], t, confirmed=[S()]),
        le.release_entry(
            req.doc,
            rid,
            functions,
            categories=["name"],
            facts=S(),
            count=1,
            reviewer="ig-whittington",
            policy=b.engine.policy_hash,
            time=t,
        ),
        req.notice(rid, 0, t),
    )
    report = audit_in_memory(b.entries)
    assert flagged(report, review, review + 1), lines(report)


def test_a_reviewer_added_again_after_retirement_cannot_release() -> None:
    """Retire a release reviewer, then "re-register" the same id (to re-date its roles)
    and release with it."""
    b = LogBuilder().init()
    b.reviewer("temp-st-marys", "st-marys-primary", ["release_reviewer"], "retire")
    again = b.reviewer("temp-st-marys", "st-marys-primary", ["release_reviewer"])
    rid = b.request(
        "met-police",
        "st-marys-primary",
        "prevention_detection_of_crime",
        CRIME,
        ["name"],
        [S()],
        offence=THEFT,
    )
    b.review(rid, "temp-st-marys")
    review = next(i for i, e in enumerate(b.entries) if e["kind"] == "review")
    report = audit_in_memory(b.entries)
    assert flagged(report, again), lines(report)
    assert flagged(report, review, review + 1), lines(report)


def test_a_deferral_split_from_its_releases_by_a_checkpoint() -> None:
    """A checkpoint signed between a review's releases and their deferral: the first run
    ends with the releases (notices owed), the second starts with the deferral."""
    b = LogBuilder().init()
    rid = b.request(
        "met-police",
        "whittington-health",
        "prevention_detection_of_crime",
        CRIME,
        ["name", "address"],
        [S(), S()],
        offence=THEFT,
    )
    b.review(rid, "ig-whittington", defer=True)
    assert b.entries[-1]["kind"] == "deferral"
    log = MemoryLog(b.entries)
    log.size = len(b.entries) - 1
    _, state = log.audit()
    log.size = len(b.entries)
    second, _ = log.audit(state)
    assert flagged(second, len(b.entries) - 1), lines(second)
