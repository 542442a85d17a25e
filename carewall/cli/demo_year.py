"""A reproducible synthetic year of disclosure requests, for ``carewall demo``.

Shaped by what campaigners' FOI requests found: the Home Office sent the Department for
Education tracing requests for 4,296 people in 27 months (about 1,900 a year), it traced
patients through NHS Digital and child maintenance claimants through DWP, and police
passed victims and witnesses of crime to immigration enforcement. Beside those sit the
requests public bodies legitimately make of each other: police investigating crime,
councils safeguarding children and adults, courts, and health bodies caring for patients.

Everything here is invented from a seeded generator: the same seed gives the same
requests, decisions, reviews, appeals and notices. Names and references are fictional.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from carewall.errors import ConflictError
from carewall.service.facade import Service
from carewall.service.jobs import drain, record_queued
from carewall.service.records import RequestRecord
from carewall.service.submit_batch import SubmitBatch

__all__ = ["SCENARIOS", "DemoStats", "Scenario", "fill_year", "plan_year"]

YEAR = 2026
FIRST = [
    "Amara",
    "Ben",
    "Chloe",
    "Dariusz",
    "Efua",
    "Farid",
    "Grace",
    "Hamid",
    "Ines",
    "Jamal",
    "Kasia",
    "Liam",
    "Mei",
    "Nadia",
    "Olu",
    "Priya",
    "Rui",
    "Sana",
    "Tomasz",
    "Yusuf",
]
LAST = [
    "Adeyemi",
    "Brennan",
    "Costa",
    "Dlamini",
    "Evans",
    "Fernandes",
    "Gill",
    "Hussain",
    "Ivanova",
    "Johnson",
    "Kowalski",
    "Lopez",
    "Mahmood",
    "Nowak",
    "Osei",
    "Patel",
    "Quinn",
    "Rahman",
    "Santos",
    "Tran",
]

# Reviewers the demo adds so that every holder has a release and a separate appeal reviewer.
EXTRA_REVIEWERS: list[tuple[str, str, str, list[str]]] = [
    ("appeals-dfe", "R. Kaur", "dfe", ["appeal_reviewer"]),
    ("appeals-dwp", "T. Moore", "dwp", ["appeal_reviewer"]),
    ("dpo-nhs-digital", "F. Green", "nhs-digital", ["release_reviewer"]),
    ("appeals-nhs-digital", "G. White", "nhs-digital", ["appeal_reviewer"]),
    ("appeals-archway", "Dr N. Shah", "archway-medical-centre", ["appeal_reviewer"]),
    ("caldicott-candi", "Dr O. Reid", "camden-and-islington-mh", ["release_reviewer"]),
    ("appeals-candi", "P. Lewis", "camden-and-islington-mh", ["appeal_reviewer"]),
    ("dpo-highgate", "S. Clarke", "highgate-wood-secondary", ["release_reviewer"]),
    ("appeals-highgate", "V. Hall", "highgate-wood-secondary", ["appeal_reviewer"]),
    ("dpo-hmrc", "W. Young", "hmrc", ["release_reviewer"]),
    ("appeals-hmrc", "X. King", "hmrc", ["appeal_reviewer"]),
]


@dataclass(frozen=True)
class Scenario:
    """One kind of request, and how many arrive in a year."""

    name: str
    per_year: int
    requester: str
    holders: tuple[str, ...]
    purpose: str
    legal_basis: str
    categories: tuple[tuple[str, ...], ...]
    other_bases: tuple[str, ...] = ()
    offence: tuple[str | None, ...] = (None,)
    court_order: bool = False
    children: float = 0.0
    victims: float = 0.0
    family: int = 1  # up to this many subjects per request
    onward: tuple[str, ...] = ()
    prejudice: float = 0.0
    release_rate: float = 0.85
    necessity: str = "The information is needed for the stated purpose."


_TRACE = ("name", "address"), ("name", "address", "education_record"), ("address",)
SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "home-office tracing (DfE, NPD)",
        1900,
        "home-office-ie",
        ("dfe",),
        "immigration_enforcement",
        "dpa2018_sch2_p1_para4_immigration",
        _TRACE,
        children=0.6,
        family=4,
        necessity="Tracing request: last known address of a suspected immigration offender.",
    ),
    Scenario(
        "home-office tracing via crime exemption",
        160,
        "home-office-ie",
        ("dfe",),
        "prevention_detection_of_crime",
        "dpa2018_sch2_p1_para2_crime",
        _TRACE,
        offence=("immigration_act_1971_s24", "immigration_act_1971_s24a"),
        children=0.5,
        family=3,
        necessity="Investigation of an offence of overstaying leave.",
    ),
    Scenario(
        "home-office tracing (NHS)",
        90,
        "home-office-ie",
        ("nhs-digital",),
        "immigration_enforcement",
        "dpa2018_sch2_p1_para4_immigration",
        (("name", "address", "date_of_birth"),),
        necessity="Tracing request: patient demographic details for enforcement.",
    ),
    Scenario(
        "home-office tracing (child maintenance)",
        60,
        "home-office-ie",
        ("dwp",),
        "immigration_control",
        "statutory_gateway",
        (("name", "address", "financial"),),
        family=2,
        necessity="Address of a parent claiming child maintenance.",
    ),
    Scenario(
        "home-office victim referral",
        80,
        "home-office-ie",
        ("met-police",),
        "immigration_enforcement",
        "dpa2018_sch2_p1_para4_immigration",
        (("name", "address", "nationality"),),
        victims=1.0,
        necessity="Status check on a person who reported a crime.",
    ),
    Scenario(
        "home-office with court order",
        15,
        "home-office-ie",
        ("whittington-health",),
        "immigration_enforcement",
        "court_order",
        (("name", "address"),),
        court_order=True,
        necessity="Order for disclosure of a patient's address.",
    ),
    Scenario(
        "police: crime suspect",
        170,
        "met-police",
        ("whittington-health", "st-marys-primary", "islington-council", "dwp"),
        "prevention_detection_of_crime",
        "dpa2018_sch2_p1_para2_crime",
        (
            ("name", "address"),
            ("name", "address", "date_of_birth"),
            ("name", "contact_details", "nationality"),
        ),
        offence=("theft_act_1968_s1", "fraud_act_2006_s2", "misuse_of_drugs_act_1971_s5"),
        prejudice=0.35,
        necessity="Suspect in an ongoing investigation; address needed to arrest.",
    ),
    Scenario(
        "police: victim or witness",
        60,
        "met-police",
        ("archway-medical-centre",),
        "prevention_detection_of_crime",
        "consent",
        (("name", "contact_details"),),
        victims=1.0,
        release_rate=0.9,
        necessity="The witness has consented to being contacted by the officer.",
    ),
    Scenario(
        "police: immigration offence",
        40,
        "met-police",
        ("st-marys-primary", "dfe"),
        "prevention_detection_of_crime",
        "dpa2018_sch2_p1_para2_crime",
        _TRACE,
        offence=("immigration_act_1971_s24",),
        children=0.5,
        family=2,
        necessity="Suspected overstayer identified during a stop.",
    ),
    Scenario(
        "police: onward to immigration",
        20,
        "met-police",
        ("whittington-health",),
        "prevention_detection_of_crime",
        "dpa2018_sch2_p1_para2_crime",
        (("name", "address"),),
        onward=("immigration_enforcement",),
        offence=("theft_act_1968_s1",),
        necessity="Joint operation with immigration enforcement.",
    ),
    Scenario(
        "police: health records by court order",
        30,
        "met-police",
        ("whittington-health",),
        "court_proceedings",
        "court_order",
        (("health_record",), ("name", "health_summary")),
        court_order=True,
        necessity="Medical records ordered for a trial.",
    ),
    Scenario(
        "council: child protection (s47)",
        140,
        "islington-council",
        ("st-marys-primary", "highgate-wood-secondary", "archway-medical-centre"),
        "safeguarding_child",
        "children_act_1989_s47",
        (
            ("name", "address", "attendance"),
            ("attendance", "safeguarding_notes"),
            ("name", "health_summary"),
        ),
        children=1.0,
        family=3,
        release_rate=0.95,
        prejudice=0.1,
        necessity="Section 47 enquiry: a child is suspected to be at risk of harm.",
    ),
    Scenario(
        "council: adult safeguarding (s42)",
        50,
        "haringey-council",
        ("camden-and-islington-mh", "whittington-health"),
        "safeguarding_adult",
        "care_act_2014_s42",
        (("name", "address", "health_summary"), ("financial",)),
        release_rate=0.9,
        necessity="Section 42 enquiry into suspected financial abuse.",
    ),
    Scenario(
        "health: direct care",
        160,
        "whittington-health",
        ("archway-medical-centre", "camden-and-islington-mh"),
        "direct_care",
        "uk_gdpr_6_1_e_9_2_h_direct_care",
        (
            ("name", "date_of_birth", "health_record"),
            ("health_summary",),
            ("mental_health_record",),
        ),
        release_rate=0.97,
        necessity="Patient admitted; the treating team needs the GP record.",
    ),
    Scenario(
        "court: proceedings",
        25,
        "snaresbrook-crown-court",
        ("whittington-health", "islington-council"),
        "court_proceedings",
        "court_order",
        (("name", "address"), ("health_record",)),
        court_order=True,
        release_rate=0.95,
        necessity="Production order in criminal proceedings.",
    ),
    Scenario(
        "entitlement check",
        50,
        "dwp",
        ("whittington-health", "hmrc"),
        "entitlement_check",
        "statutory_gateway",
        (("address", "contact_details"),),
        necessity="Checking entitlement to a benefit.",
    ),
)


@dataclass
class DemoStats:
    submitted: int = 0
    refused: int = 0
    released: int = 0
    review_refused: int = 0
    withdrawn: int = 0
    appeals: int = 0
    notices: int = 0
    deferred: int = 0
    by_scenario: dict[str, int] = field(default_factory=dict)


@dataclass(order=True)
class _Event:
    time: datetime
    seq: int
    kind: str = field(compare=False)
    data: dict[str, Any] = field(compare=False, default_factory=dict)


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _ref(rng: random.Random, holder: str) -> str:
    if holder in ("dfe", "st-marys-primary", "highgate-wood-secondary"):
        return f"H{rng.randrange(10**11, 10**12)}A"  # unique pupil number shape
    if holder in ("dwp", "hmrc"):
        return f"QQ{rng.randrange(10**6, 10**7)}C"  # NI number shape (QQ prefix: never issued)
    return str(rng.randrange(9_000_000_000, 9_999_999_999))  # NHS number shape


def _document(rng: random.Random, sc: Scenario, n: int, when: datetime) -> dict[str, Any]:
    holder = rng.choice(sc.holders)
    subjects = []
    for _ in range(rng.randint(1, sc.family)):
        child = rng.random() < sc.children
        subjects.append(
            {
                "ref": _ref(rng, holder),
                "is_child": child,
                "is_victim_or_witness": rng.random() < sc.victims,
                **(
                    {"contact": f"{_person(rng).replace(' ', '.').lower()}@example.org"}
                    if rng.random() < 0.6
                    else {}
                ),
            }
        )
    officer = _person(rng)
    doc: dict[str, Any] = {
        "reference": f"{sc.requester[:3].upper()}-{YEAR}-{n:06d}",
        "requester": sc.requester,
        "officer": {
            "name": officer,
            "role": "Officer",
            "contact": f"{officer.replace(' ', '.').lower()}@{sc.requester}.example",
        },
        "authorised_by": {"name": _person(rng), "role": "Inspector"},
        "holder": holder,
        "purpose": sc.purpose,
        "legal_basis": sc.legal_basis,
        "other_bases": list(sc.other_bases),
        "subjects": subjects,
        "categories": list(rng.choice(sc.categories)),
        "onward_recipients": list(sc.onward),
        "necessity": f"{sc.necessity} (case {n})",
        "prejudice": rng.random() < sc.prejudice,
        "received_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    offence = rng.choice(sc.offence)
    if offence:
        doc["offence"] = offence
    if sc.court_order:
        doc["court_order"] = {
            "reference": f"T{YEAR}{rng.randrange(1000, 9999)}",
            "court": "Snaresbrook Crown Court",
            "date": (when - timedelta(days=rng.randint(1, 20))).date().isoformat(),
        }
    return doc


def plan_year(seed: int = 2026, scale: float = 1.0) -> list[tuple[Scenario, datetime]]:
    """Every request's scenario and arrival time in the year, in arrival order."""
    rng = random.Random(seed)
    start = datetime(YEAR, 1, 1, tzinfo=UTC)
    out = []
    for sc in SCENARIOS:
        for _ in range(max(1, round(sc.per_year * scale))):
            # Working hours on any day; the tracing teams send in steady batches.
            day = start + timedelta(days=rng.randrange(365))
            out.append((sc, day + timedelta(hours=rng.randint(8, 17), minutes=rng.randrange(60))))
    out.sort(key=lambda x: (x[1], x[0].name))
    return out


def _reviewers(svc: Service, holder: str, role: str) -> list[str]:
    reg = svc.register()
    return sorted(
        r.id for r in reg.reviewers.values() if r.organisation == holder and role in r.roles
    )


def fill_year(
    svc: Service,
    seed: int = 2026,
    scale: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
) -> DemoStats:
    """Submit, review, appeal, withdraw and notify a synthetic year on ``svc``."""
    rng = random.Random(seed + 1)
    ids = random.Random(seed + 2)
    svc.new_id = lambda: "r" + "".join(ids.choice("0123456789abcdef") for _ in range(20))
    for rid, name, org, roles in EXTRA_REVIEWERS:
        if rid not in svc.register().reviewers:
            svc.add_reviewer(rid, name, org, roles)
    plan = plan_year(seed, scale)
    events: list[_Event] = []
    seq = iter(range(10**9))
    for n, (scenario, when) in enumerate(plan):
        doc = _document(rng, scenario, n + 1, when)
        events.append(_Event(when, next(seq), "submit", {"doc": doc, "sc": scenario}))
    heapq.heapify(events)
    stats = DemoStats()
    total = len(events)
    done = 0
    svc.auto_publish = False
    clock_now = [datetime(YEAR, 1, 1, tzinfo=UTC)]
    svc.clock = lambda: clock_now[0]

    def later(ev: _Event, days: tuple[int, int], kind: str, **data: Any) -> None:
        t = ev.time + timedelta(days=rng.randint(*days), hours=rng.randint(0, 6))
        heapq.heappush(events, _Event(t, next(seq), kind, data))

    with svc.submit_together() as batch:
        for ev in _drain(events):
            clock_now[0] = ev.time
            if ev.kind == "submit":
                done += _submit(batch, ev, stats, later, rng)
                if progress:
                    progress(done, total)
                if not events or events[0].kind != "submit":
                    batch.flush()  # what follows reads or changes these requests
                continue
            _step(svc, ev, stats, later, rng)
    svc.ledger.publish()
    svc.auto_publish = True
    # Every release queued a job for its notices; run them as the server's worker would.
    stats.notices = drain(svc).sent + svc.deliver_pending()
    stats.deferred = len(svc.notices(status="deferred"))
    return stats


def _submit(
    batch: SubmitBatch,
    ev: _Event,
    stats: DemoStats,
    later: Callable[..., None],
    rng: random.Random,
) -> int:
    """A request of the year, decided now and recorded with the ones submitted beside it
    (the same log as one by one: each keeps its id and time)."""
    sc: Scenario = ev.data["sc"]
    got = batch.submit(ev.data["doc"])
    stats.submitted += 1
    stats.by_scenario[sc.name] = stats.by_scenario.get(sc.name, 0) + 1
    if got.outcome == "refused":
        stats.refused += 1
        if rng.random() < 0.03:
            later(ev, (3, 20), "appeal", id=got.id, by="requester")
    elif rng.random() < 0.03:
        later(ev, (0, 2), "withdraw", id=got.id, org=sc.requester)
    else:
        later(ev, (0, 12), "review", id=got.id, sc=sc)
    return 1


def _step(
    svc: Service,
    ev: _Event,
    stats: DemoStats,
    later: Callable[..., None],
    rng: random.Random,
) -> None:
    """Any other event of the year: a review, withdrawal, appeal, deferral lifted or renewed."""
    if ev.kind == "review":
        rec = svc.get(ev.data["id"])
        if rec.stage != "decided":
            return
        release = rng.random() < ev.data["sc"].release_rate
        reviewer = rng.choice(_reviewers(svc, rec.holder, "release_reviewer"))
        facts = _holder_facts(rng, rec)
        # record_review: the record is read again below only when it is needed
        try:
            svc.record_review(rec.id, reviewer, release, facts=facts if release else None)
        except ConflictError:  # nothing may go on the holder's record: refuse instead
            release = False
            svc.record_review(rec.id, reviewer, False)
        if release:
            # the notices are written now, as a server's worker would write them
            record_queued(svc)
            stats.released += 1
            if rng.random() < 0.03:
                later(ev, (10, 40), "appeal", id=rec.id, by="subject")
            if svc.notices(rec.id, status="deferred"):
                roll = rng.random()
                if roll < 0.5:
                    later(ev, (30, 80), "lift", id=rec.id)
                elif roll < 0.7:
                    later(ev, (60, 85), "renew", id=rec.id)
        else:
            stats.review_refused += 1
            if rng.random() < 0.25:
                later(ev, (3, 20), "appeal", id=rec.id, by="requester")
    elif ev.kind == "withdraw":
        svc.withdraw(ev.data["id"], ev.data["org"])
        stats.withdrawn += 1
    elif ev.kind == "appeal":
        rec = svc.appeal(ev.data["id"], ev.data["by"], "The decision was wrong.")
        stats.appeals += 1
        later(ev, (5, 25), "decide_appeal", id=rec.id)
    elif ev.kind == "decide_appeal":
        rec = svc.get(ev.data["id"])
        who = [r for r in _reviewers(svc, rec.holder, "appeal_reviewer") if r != rec.reviewer]
        if not who:
            return
        # Only a refusal the policy would have allowed can be overturned into a release.
        can_release = (
            rec.appeal is not None
            and rec.appeal.prior_outcome == "refused"
            and (rec.decision.get("outcome") == "review")
        )
        uphold = not (can_release and rng.random() < 0.5) and not (
            rec.appeal is not None and rec.appeal.by == "subject" and rng.random() < 0.2
        )
        if rec.appeal is not None and rec.appeal.prior_outcome == "refused" and not can_release:
            uphold = True
        decider = rng.choice(who)
        releases = not uphold and rec.appeal is not None and rec.appeal.prior_outcome == "refused"
        try:
            svc.record_appeal_decision(
                rec.id, decider, uphold, facts=_holder_facts(rng, rec) if releases else None
            )
        except ConflictError:  # nothing may go on the holder's record: the refusal stands
            svc.record_appeal_decision(rec.id, decider, True)
        record_queued(svc)
    elif ev.kind in ("lift", "renew"):
        rec = svc.get(ev.data["id"])
        if not any(n_.status == "deferred" for n_ in rec.notices):
            return
        decider = _reviewers(svc, rec.holder, "release_reviewer")[0]
        if ev.kind == "lift":
            svc.lift_deferral(rec.id, decider)
            record_queued(svc)
        else:
            until = (ev.time + timedelta(days=rng.randint(30, 89))).date().isoformat()
            svc.renew_deferral(rec.id, decider, until)
            later(ev, (20, 60), "lift", id=rec.id)


def _holder_facts(rng: random.Random, rec: RequestRecord) -> list[dict[str, Any]]:
    """What the holder's reviewer says about each subject before a release.

    Each consent claim is checked against the holder's own record (here nine in ten hold
    up), and now and then the holder knows better than the requester that a person is a
    victim or witness of crime.
    """
    facts: list[dict[str, Any]] = []
    for s in rec.subjects:
        said: dict[str, Any] = {}
        if s.consent and rng.random() < 0.9:
            said["consent"] = True
        if not s.is_victim_or_witness and rng.random() < 0.02:
            said["is_victim_or_witness"] = True
        if said:
            facts.append({"subject": s.position, **said})
    return facts


def _drain(events: list[_Event]) -> Iterator[_Event]:
    end = datetime(YEAR + 1, 1, 1, tzinfo=UTC)
    while events:
        ev = heapq.heappop(events)
        if ev.time >= end:
            continue  # the year is over; what is still pending stays pending
        yield ev
