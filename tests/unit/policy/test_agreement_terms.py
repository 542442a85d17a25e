"""Agreements as standing requests: parsing their terms strictly, and the pledge applied to
every subject they cover, by the same engine as requests (carewall.policy.agreements)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from carewall.errors import InputError
from carewall.policy import Engine, Register
from carewall.policy.agreements import (
    ReleaseIndex,
    parse_agreement,
    parse_agreement_text,
    pledge_breaches,
    subject_combinations,
)

EXAMPLES = Path(__file__).parents[3] / "examples" / "agreements"

ALLOWED: dict[str, Any] = {
    "id": "whittington-met-police-crime-isa",
    "holder": "whittington-health",
    "recipient": "met-police",
    "purpose": "prevention_detection_of_crime",
    "legal_basis": "dpa2018_sch2_p1_para2_crime",
    "categories": ["name", "address"],
    "start": "2026-01-01",
    "subjects": {"victims_or_witnesses": False},
}


def breaches(engine: Engine, register: Register, **changes: Any) -> list[str]:
    terms = parse_agreement({**ALLOWED, **changes}).terms()
    return pledge_breaches(engine, register, terms)


def example(name: str) -> dict[str, Any]:
    path = EXAMPLES / name
    return parse_agreement_text(path.read_bytes(), path.name).terms()


# ----- the seeds --------------------------------------------------------------------------


def test_dfe_home_office_npd_mou_is_refused_by_every_immigration_rule(
    engine: Engine, register: Register
) -> None:
    assert pledge_breaches(engine, register, example("dfe-home-office-npd-mou.toml")) == [
        "pledge/no-immigration-recipient",
        "pledge/no-immigration-purpose",
        "pledge/no-immigration-offence",
        "pledge/no-victim-witness-referral",
        "pledge/never-nationality",
    ]


@pytest.mark.parametrize("end", ["2018-11-13", "2010-01-01", None, "2099-01-01"])
def test_nhs_digital_home_office_mou_2017_is_refused_whatever_its_dates(
    engine: Engine, register: Register, end: str | None
) -> None:
    terms = example("nhs-digital-home-office-mou-2017.toml")
    terms["end"] = end
    terms["start"] = "2009-01-01"
    assert "pledge/no-immigration-recipient" in pledge_breaches(engine, register, terms)


def test_police_victim_referrals_are_refused(engine: Engine, register: Register) -> None:
    rules = pledge_breaches(engine, register, example("police-victim-referrals.toml"))
    assert {"pledge/no-immigration-exemption", "pledge/no-victim-witness-referral"} <= set(rules)


def test_hospital_police_crime_isa_is_allowed(engine: Engine, register: Register) -> None:
    assert pledge_breaches(engine, register, example("hospital-police-crime-isa.toml")) == []


# ----- forbidden agreements split into innocent-looking parts -----------------------------


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"onward_recipients": ["immigration_enforcement"]}, "pledge/no-onward-immigration"),
        ({"offence": "immigration_act_1971_s24a_1"}, "pledge/no-immigration-offence"),
        ({"offence": "immigration_act_1971_s26"}, "pledge/no-immigration-offence"),
        ({"other_bases": ["dpa2018_sch2_p1_para4_immigration"]}, "pledge/no-immigration-exemption"),
        ({"purpose": "immigration_control"}, "pledge/no-immigration-purpose"),
        ({"categories": ["name", "country_of_birth"]}, "pledge/never-nationality"),
        ({"categories": ["name", "health_record"]}, "pledge/court-order-health"),
        ({"subjects": {}}, "pledge/no-victim-witness-referral"),  # covers victims: default
        (
            {
                "recipient": "dwp",
                "purpose": "entitlement_check",
                "legal_basis": "statutory_gateway",
            },
            "pledge/entitlement-no-contact",
        ),
    ],
)
def test_a_split_forbidden_agreement_is_refused(
    engine: Engine, register: Register, changes: dict[str, Any], rule: str
) -> None:
    assert rule in breaches(engine, register, **changes)


def test_victims_with_consent_only_may_go_to_police(engine: Engine, register: Register) -> None:
    assert breaches(engine, register, subjects={"consent_required": True}) == []


def test_every_covered_combination_is_decided() -> None:
    terms = parse_agreement(ALLOWED).terms()
    assert len(subject_combinations(terms)) == 4  # child or not, consent or not
    assert len(subject_combinations({**terms, "victims_or_witnesses": True})) == 8
    only = subject_combinations({**terms, "children": False, "consent_required": True})
    assert [(s.is_child, s.is_victim_or_witness, s.consent) for s in only] == [(False, False, True)]


# ----- malformed terms: named errors, never a guess ---------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"recipient": "Home-Office-IE"}, "recipient"),
        ({"recipient": " home-office-ie"}, "recipient"),
        ({"recipient": "home-office-ie\n"}, "recipient"),
        ({"holder": "whittington-health "}, "holder"),
        ({"id": "MoU 2016"}, "id"),
        ({"purpose": "Immigration_Enforcement"}, "purpose"),
        ({"purpose": "tracing"}, "purpose"),
        ({"categories": []}, "categories"),
        ({"categories": ["name", "name"]}, "categories"),
        ({"categories": ["name", "NATIONALITY"]}, "categories[1]"),
        ({"onward_recipients": "immigration_enforcement"}, "onward_recipients"),
        ({"start": "2016-02-30"}, "start"),
        ({"start": "20160101"}, "start"),
        ({"start": "2016-W01-1"}, "start"),
        ({"end": "2025-12-31"}, "end"),  # before start
        ({"recipient": "whittington-health"}, "recipient"),  # itself
        ({"offence": "Immigration Act s24"}, "offence"),
        ({"text_sha256": "abc"}, "text_sha256"),
        ({"subjects": {"victims_or_witnesses": "no"}}, "subjects.victims_or_witnesses"),
        ({"subjects": {"adults": True}}, "subjects.adults"),
        ({"parties": ["a", "b"]}, "parties"),
        ({"title": "line\u0000break"}, "title"),
        ({"recipient_key": "police.test/log+zz"}, "recipient_key"),
        ({"recipient_key": 7}, "recipient_key"),
    ],
)
def test_malformed_terms_are_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as e:
        parse_agreement({**ALLOWED, **changes})
    assert e.value.field == field


@pytest.mark.parametrize(
    "missing", ["id", "holder", "recipient", "purpose", "legal_basis", "categories", "start"]
)
def test_a_missing_field_is_named(missing: str) -> None:
    doc = {k: v for k, v in ALLOWED.items() if k != missing}
    with pytest.raises(InputError) as e:
        parse_agreement(doc)
    assert e.value.field == missing


def test_an_unlisted_act_is_logged_as_unlisted() -> None:
    assert parse_agreement({**ALLOWED, "offence": "made_up_act_2001_s1"}).offence == "unlisted"


def test_files_that_are_not_toml_or_json_are_named() -> None:
    with pytest.raises(InputError) as e:
        parse_agreement_text(b"id = ", "a.toml")
    assert e.value.field == "FILE"
    with pytest.raises(InputError):
        parse_agreement_text(b"\xff", "a.json")


def test_releases_are_counted_per_relationship_and_day() -> None:
    index = ReleaseIndex()
    base = {"kind": "release", "holder": "h", "recipient": "r", "purpose": "p", "subjects": 2}
    index.feed({**base, "time": "2026-03-01T10:00:00Z", "categories": ["name"]})
    index.feed({**base, "time": "2026-05-01T10:00:00Z", "categories": ["address"]})
    index.feed({**base, "recipient": "x", "time": "2026-03-01T10:00:00Z", "categories": ["name"]})
    terms = {
        "holder": "h",
        "recipient": "r",
        "purpose": "p",
        "start": "2026-02-01",
        "end": "2026-04-30",
    }
    went = ReleaseIndex.from_json(index.to_json()).under(terms)
    assert (went.releases, went.subjects, went.categories) == (1, 2, ("name",))
    assert index.under({**terms, "end": None}).releases == 2
