"""A careless or dishonest admin/operator against the firewall, through the policy and the
register.

Two routes are tried. Through the service (the CLI and API call the same
:class:`~carewall.service.Service` methods): a change that the service should refuse with
a clear error. Through the log: the operator holds the log's key, so a forged log is signed
and schema-valid; each such log is written with :class:`audit_support.LogBuilder` and
audited in process (:func:`audit_serving.audit_in_memory`), and the audit SHOULD fail with a
finding naming the entry at fault.

Twenty-two of these tests were ways round when the review wrote them (six gaps); each is
closed now. The others record defences that held.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from audit_serving import audit_in_memory
from audit_support import LogBuilder, S

from carewall.audit import AuditReport
from carewall.errors import CarewallError, PolicyError
from carewall.policy import Engine
from carewall.service import Service
from carewall.service import logentries as le
from carewall.service import tables as t

CRIME = "dpa2018_sch2_p1_para2_crime"
THEFT = "theft_act_1968_s1"

# A local policy that permits every category to everyone, for every purpose.
PERMIT_ALL = """
@id("local/everything")
@legal_basis("consent")
@rationale("An admin who wants everything out.")
permit (principal, action == Action::"disclose", resource);
"""

# Names of immigration-enforcement bodies (or of the Home Office itself) that the name
# guard does not see: the Home Office's legal name in litigation, its agencies' usual
# abbreviations, the singular "visa", its 2024 border body, and a one-letter misspelling.
UNSEEN_IMMIGRATION_NAMES = [
    "Secretary of State for the Home Department",
    "UKVI",
    "UK Visa Services",
    "Border Security Command",
    "Imigration Compliance Unit",
]

# Names the service refuses as blank or unprintable, written into the log by hand.
UNPRINTABLE_NAMES = [" ", "\u3000", "\u200b", "\u202eecilop", "Met\nPolice", "Met\x01Police"]


# ----- helpers ---------------------------------------------------------------------------


def flagged(report: AuditReport, *indices: int) -> bool:
    """Whether the audit failed with a finding at (or naming) one of ``indices``."""
    if report.ok:
        return False
    return any(f.index == i or f"entry {i}" in f.message for f in report.findings for i in indices)


def lines(report: AuditReport) -> list[str]:
    return [f.line() for f in report.findings]


def doc(requester: str, holder: str, **over: Any) -> dict[str, Any]:
    """A request document (contract §3), with no personal data."""
    out: dict[str, Any] = {
        "reference": "TEST-0001",
        "requester": requester,
        "holder": holder,
        "purpose": "prevention_detection_of_crime",
        "legal_basis": CRIME,
        "offence": THEFT,
        "subjects": [{"ref": "SUBJ-1", "is_child": False, "is_victim_or_witness": False}],
        "categories": ["name"],
        "necessity": "test",
        "received_at": "2026-01-05T10:00:00Z",
    }
    out.update(over)
    return out


def ledger_entries(svc: Service) -> list[bytes]:
    return list(svc.ledger.entries(0, svc.ledger.size()))


def kinds_at(svc: Service, start: int) -> list[tuple[int, str]]:
    out = []
    for i, raw in enumerate(svc.ledger.entries(start, svc.ledger.size()), start):
        out.append((i, json.loads(raw)["kind"]))
    return out


def police_request(b: LogBuilder, requester: str = "met-police") -> str:
    return b.request(
        requester,
        "st-marys-primary",
        "prevention_detection_of_crime",
        CRIME,
        ["name"],
        [S()],
        offence=THEFT,
    )


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    service = Service.init(
        f"sqlite:///{tmp_path / 'attack.db'}", None, "carewall.test/attacks", tmp_path / "k"
    )
    try:
        yield service
    finally:
        service.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One instance for attacks that each use their own ids."""
    tmp = tmp_path_factory.mktemp("attacks-shared")
    service = Service.init(f"sqlite:///{tmp / 's.db'}", None, "carewall.test/shared", tmp / "k")
    try:
        yield service
    finally:
        service.close()


# ===== the policy, through the service ====================================================


def test_a_local_permit_of_everything_releases_nothing_the_pledge_forbids(svc: Service) -> None:
    svc.set_local_policy(PERMIT_ALL)
    cases = [
        (doc("home-office-ie", "whittington-health"), "pledge/no-immigration-recipient"),
        (
            doc("met-police", "whittington-health", purpose="immigration_control"),
            "pledge/no-immigration-purpose",
        ),
        (
            doc("met-police", "whittington-health", offence="immigration_act_1971_s24_1_b"),
            "pledge/no-immigration-offence",
        ),
        (
            doc("met-police", "whittington-health", categories=["nationality"]),
            "pledge/never-nationality",
        ),
        (
            doc("met-police", "whittington-health", onward_recipients=["immigration_enforcement"]),
            "pledge/no-onward-immigration",
        ),
    ]
    for request, rule in cases:
        got = svc.submit(request)
        assert got.outcome == "refused", rule
        assert rule in svc.get(got.id).decision["rules"], rule


@pytest.mark.parametrize("rule_id", ["pledg/never-nationality", "pleadge/no-immigration-purpose"])
def test_a_local_rule_named_nearly_as_a_pledge_rule(rule_id: str) -> None:
    text = PERMIT_ALL.replace("local/everything", rule_id)
    with pytest.raises(PolicyError):
        Engine.load(text)


def test_a_local_policy_changed_in_the_database_without_a_policy_entry(svc: Service) -> None:
    """The operator writes a looser local policy straight into the settings table: the
    service decides with it, but every decision then names a policy the log never put in
    force."""
    with svc.store.write() as conn:
        conn.execute(
            t.settings.update().where(t.settings.c.key == "local_policy").values(value=PERMIT_ALL)
        )
    start = svc.ledger.size()
    got = svc.submit(doc("met-police", "whittington-health", categories=["name", "address"]))
    entries = dict(kinds_at(svc, start))
    decision = next(i for i, k in entries.items() if k == "decision")
    report = audit_in_memory(ledger_entries(svc))
    assert got.outcome == "review"
    assert flagged(report, decision), lines(report)


# ===== the policy, forged in the log ======================================================


def test_a_policy_entry_whose_text_is_looser_than_its_hash() -> None:
    """The entry states the default policy's hash and rules, but its text permits all."""
    b = LogBuilder().init()
    e = b.engine
    at = b.add(
        le.policy_entry(
            policy=e.policy_hash,
            pledge=e.pledge_hash,
            rules=e.rule_ids,
            change="update",
            text=e.local_text + PERMIT_ALL,
            time=b.now(),
        )
    )
    report = audit_in_memory(b.entries)
    assert flagged(report, at), lines(report)


def test_a_policy_loosened_between_a_review_and_its_release() -> None:
    b = LogBuilder().init()
    rid = police_request(b)
    b.review(rid, "dpo-st-marys")
    review = next(i for i, e in enumerate(b.entries) if e["kind"] == "review")
    loose = Engine.load(b.engine.local_text + PERMIT_ALL)
    entry = dict(
        le.policy_entry(
            policy=loose.policy_hash,
            pledge=loose.pledge_hash,
            rules=loose.rule_ids,
            change="update",
            text=loose.local_text,
            time=b.entries[review]["time"],
        )
    )
    entries = [*b.entries[: review + 1], entry, *b.entries[review + 1 :]]
    report = audit_in_memory(entries)
    assert flagged(report, review + 2), lines(report)  # the release


# ===== the register, through the service ==================================================


@pytest.mark.parametrize("name", UNSEEN_IMMIGRATION_NAMES)
def test_an_immigration_body_under_a_name_the_guard_does_not_see(
    shared: Service, name: str
) -> None:
    org_id = "unseen-" + str(UNSEEN_IMMIGRATION_NAMES.index(name))
    with pytest.raises(CarewallError):
        shared.add_organisation(org_id, name, "police")


def test_an_immigration_body_re_registered_as_police(shared: Service) -> None:
    shared.add_organisation("returns-unit", "Returns Liaison Unit", "immigration_enforcement")
    shared.retire_organisation("returns-unit")
    with pytest.raises(CarewallError):
        shared.add_organisation("returns-unit-2", "Returns Liaison Unit", "police")


def test_one_name_registered_as_immigration_enforcement_and_as_police(shared: Service) -> None:
    shared.add_organisation("ops-unit", "Operations Support Unit", "immigration_enforcement")
    with pytest.raises(CarewallError):
        shared.add_organisation("ops-unit-2", "Operations Support Unit", "police")


@pytest.mark.parametrize(
    "org_id", ["Met-Police", "met-police ", "met\u2010police", "met-pol\u0456ce", "met-police\n"]
)
def test_an_organisation_id_differing_by_case_or_unicode(shared: Service, org_id: str) -> None:
    before = shared.ledger.size()
    with pytest.raises(CarewallError):
        shared.add_organisation(org_id, "Another Police Service", "police")
    assert shared.ledger.size() == before


def test_a_reviewer_at_the_requester_cannot_release(svc: Service) -> None:
    svc.add_reviewer("met-dpo", "A Reviewer", "met-police", ["release_reviewer"])
    got = svc.submit(doc("met-police", "whittington-health"))
    assert got.outcome == "review"
    before = svc.ledger.size()
    with pytest.raises(CarewallError):
        svc.review(got.id, "met-dpo", True, no_defer=True)
    assert svc.ledger.size() == before


def test_an_immigration_body_made_police_in_the_database(svc: Service) -> None:
    """The operator edits the register's table (function and name) without a log entry:
    the service then releases to the body, but the auditor fails the request and counts
    the release as one to immigration enforcement."""
    with svc.store.write() as conn:
        conn.execute(
            t.organisations.update()
            .where(t.organisations.c.id == "home-office-ie")
            .values(function="police", name="Liaison Unit")
        )
        conn.execute(
            t.settings.update().where(t.settings.c.key == "register_version").values(value="999")
        )
    start = svc.ledger.size()
    got = svc.submit(doc("home-office-ie", "whittington-health"))
    svc.review(got.id, "ig-whittington", True, no_defer=True)
    request = next(i for i, k in kinds_at(svc, start) if k == "request")
    report = audit_in_memory(ledger_entries(svc))
    assert flagged(report, request), lines(report)
    assert report.totals.releases_to_immigration == 1


# ===== the register, forged in the log ====================================================


@pytest.mark.parametrize("name", UNPRINTABLE_NAMES, ids=[repr(n) for n in UNPRINTABLE_NAMES])
def test_a_logged_organisation_with_a_blank_or_unprintable_name(name: str) -> None:
    b = LogBuilder().init()
    at = b.organisation("nameless", name, "police")
    report = audit_in_memory(b.entries)
    assert flagged(report, at), lines(report)


@pytest.mark.parametrize("name", UNSEEN_IMMIGRATION_NAMES)
def test_a_logged_immigration_body_under_a_name_the_guard_does_not_see(name: str) -> None:
    b = LogBuilder().init()
    at = b.organisation("unseen", name, "police")
    report = audit_in_memory(b.entries)
    assert flagged(report, at), lines(report)


def test_a_logged_immigration_body_re_registered_as_police_then_released_to() -> None:
    b = LogBuilder().init()
    b.organisation("returns-unit", "Returns Liaison Unit", "immigration_enforcement")
    b.organisation("returns-unit", "Returns Liaison Unit", "immigration_enforcement", "retire")
    at = b.organisation("returns-unit-2", "Returns Liaison Unit", "police")
    rid = police_request(b, "returns-unit-2")
    b.review(rid, "dpo-st-marys")
    report = audit_in_memory(b.entries)
    assert flagged(report, at), lines(report)
    assert report.totals.releases_to_immigration == 1


@pytest.mark.parametrize(
    ("first", "then"),
    [("police", "immigration_enforcement"), ("immigration_enforcement", "police")],
)
def test_two_organisations_with_one_id(first: str, then: str) -> None:
    b = LogBuilder().init()
    b.organisation("dual-body", "Dual Body", first)
    at = b.organisation("dual-body", "Dual Body", then)
    report = audit_in_memory(b.entries)
    assert flagged(report, at), lines(report)


@pytest.mark.parametrize("bad", ["Met-Police", "met-police ", "met\u2010police", "met-pol\u0456ce"])
def test_a_logged_organisation_id_differing_by_case_or_unicode(bad: str) -> None:
    b = LogBuilder().init()
    entry = dict(le.organisation_entry("x", "Another Police Service", "police", "add", b.now()))
    entry["id"] = bad
    at = b.add(entry)
    report = audit_in_memory(b.entries)
    assert flagged(report, at), lines(report)


def test_a_reviewer_logged_after_the_release_but_dated_before_it() -> None:
    """The release names a reviewer the log adds only afterwards, backdated to look as if
    the reviewer existed at the time."""
    b = LogBuilder().init()
    rid = police_request(b)
    req = b.requests[rid]
    t0 = b.now()
    review = b.add(
        le.review_entry(rid, "released", "late-reviewer", ["name"], t0, confirmed=[S()]),
        le.release_entry(
            req.doc,
            rid,
            b.functions(),
            categories=["name"],
            facts=S(),
            count=1,
            reviewer="late-reviewer",
            policy=b.engine.policy_hash,
            time=t0,
        ),
        req.notice(rid, 0, t0),
    )
    added = b.add(
        le.reviewer_entry(
            "late-reviewer", "st-marys-primary", ["release_reviewer"], "add", "2026-01-01T00:00:00Z"
        )
    )
    report = audit_in_memory(b.entries)
    assert flagged(report, review, review + 1), lines(report)
    assert flagged(report, added), lines(report)


@pytest.mark.parametrize("granted", [True, False], ids=["granted", "revoked"])
def test_a_reviewer_role_changed_between_review_and_release(granted: bool) -> None:
    """The release role granted just after the review, or revoked before the release is
    logged."""
    b = LogBuilder().init()
    before, after = ["appeal_reviewer"], ["release_reviewer"]
    if not granted:
        before, after = after, before
    b.reviewer("swing-reviewer", "st-marys-primary", before)
    rid = police_request(b)
    if granted:
        _forced_review(b, rid)
    else:
        b.review(rid, "swing-reviewer")
    review = next(i for i, e in enumerate(b.entries) if e["kind"] == "review")
    change = le.reviewer_entry(
        "swing-reviewer", "st-marys-primary", after, "update", b.entries[review]["time"]
    )
    entries = [*b.entries[: review + 1], dict(change), *b.entries[review + 1 :]]
    report = audit_in_memory(entries)
    assert flagged(report, review + 2), lines(report)  # the release


def _forced_review(b: LogBuilder, rid: str) -> None:
    """The builder's review, by a reviewer who (in the log) lacks the release role."""
    req = b.requests[rid]
    t0 = b.now()
    b.add(
        le.review_entry(rid, "released", "swing-reviewer", ["name"], t0, confirmed=[S()]),
        le.release_entry(
            req.doc,
            rid,
            b.functions(),
            categories=["name"],
            facts=S(),
            count=1,
            reviewer="swing-reviewer",
            policy=b.engine.policy_hash,
            time=t0,
        ),
        req.notice(rid, 0, t0),
    )


def test_a_logged_reviewer_at_the_requester_releases() -> None:
    b = LogBuilder().init()
    b.reviewer("met-dpo", "met-police", ["release_reviewer"])
    rid = police_request(b)
    req = b.requests[rid]
    t0 = b.now()
    review = b.add(
        le.review_entry(rid, "released", "met-dpo", ["name"], t0, confirmed=[S()]),
        le.release_entry(
            req.doc,
            rid,
            b.functions(),
            categories=["name"],
            facts=S(),
            count=1,
            reviewer="met-dpo",
            policy=b.engine.policy_hash,
            time=t0,
        ),
        req.notice(rid, 0, t0),
    )
    report = audit_in_memory(b.entries)
    assert flagged(report, review, review + 1), lines(report)


def test_a_logged_organisation_retired_with_its_reviewers_still_active() -> None:
    b = LogBuilder().init()
    at = b.organisation("whittington-health", "Whittington Health NHS Trust", "health", "retire")
    report = audit_in_memory(b.entries)
    assert flagged(report, at), lines(report)


def test_an_immigration_body_under_a_police_bodys_name(shared: Service) -> None:
    """The other way round: a police body first, then an immigration-enforcement body
    under its name (spelt otherwise). The service refuses the second, naming the field."""
    shared.add_organisation("liaison-x", "Liaison Unit X", "police")
    before = shared.ledger.size()
    with pytest.raises(CarewallError) as e:
        shared.add_organisation("liaison-x-ie", "LIAISON-UNIT x", "immigration_enforcement")
    assert e.value.field == "name"
    assert shared.ledger.size() == before


def test_a_logged_police_body_whose_name_an_immigration_body_takes() -> None:
    """In a forged log, the immigration body takes the police body's name: a finding at
    its entry, and releases to the police body from then on count as to immigration."""
    b = LogBuilder().init()
    b.organisation("liaison-x", "Liaison Unit X", "police")
    at = b.organisation("liaison-x-ie", "Liaison Unit X", "immigration_enforcement")
    rid = police_request(b, "liaison-x")
    b.review(rid, "dpo-st-marys")
    report = audit_in_memory(b.entries)
    assert flagged(report, at), lines(report)
    assert report.totals.releases_to_immigration == 1


def test_bodies_of_one_function_may_share_a_name_and_others_register() -> None:
    """The controls: two police bodies of one name, and names near the terms, pass."""
    b = LogBuilder().init()
    b.organisation("unit-a", "Operations Unit", "police")
    b.organisation("unit-b", "Operations Unit", "police")
    b.organisation("envisage", "Envisage Health", "health")
    assert audit_in_memory(b.entries).ok
