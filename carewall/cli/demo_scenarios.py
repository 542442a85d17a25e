"""What the demo's synthetic year holds: its scenarios, the people and references in its
requests, and when each request arrives (:func:`plan_year`, :func:`document`).

Shaped by what campaigners' FOI requests found: the Home Office sent the Department for
Education tracing requests for 4,296 people in 27 months (about 1,900 a year), it traced
patients through NHS Digital and child maintenance claimants through DWP, and police
passed victims and witnesses of crime to immigration enforcement. Beside those sit the
requests public bodies legitimately make of each other: police investigating crime,
councils safeguarding children and adults, courts, and health bodies caring for patients.

Everything here is invented from a seeded generator: the same seed gives the same requests.
Names and references are fictional.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["EXTRA_REVIEWERS", "SCENARIOS", "YEAR", "Scenario", "document", "plan_year"]

# The last full year: every entry of the demo's log is then dated before anything a
# visitor does on the served demo, so its times never go backwards (the auditor fails a
# log that does), and nothing on a public log is dated in the future.
YEAR = datetime.now(UTC).year - 1
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


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _ref(rng: random.Random, holder: str) -> str:
    if holder in ("dfe", "st-marys-primary", "highgate-wood-secondary"):
        return f"H{rng.randrange(10**11, 10**12)}A"  # unique pupil number shape
    if holder in ("dwp", "hmrc"):
        return f"QQ{rng.randrange(10**6, 10**7)}C"  # NI number shape (QQ prefix: never issued)
    return str(rng.randrange(9_000_000_000, 9_999_999_999))  # NHS number shape


def document(rng: random.Random, sc: Scenario, n: int, when: datetime) -> dict[str, Any]:
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
