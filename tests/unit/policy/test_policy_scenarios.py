"""Named scenarios from the seed documents' real cases (Liberty's evidence on hostile
environment data-sharing), and the legitimate duties that must still reach human review.

Each row: the request (a valid police suspect request, with fields replaced), the expected
overall outcome, and for each named category the outcome and a rule that must decide it.
"""

from __future__ import annotations

from typing import Any

import pytest
from policy_helpers import request, subject

from carewall.policy import Engine, Register, parse_request

IE = "home-office-ie"
CO = {"reference": "T20267781", "court": "Snaresbrook Crown Court", "date": "2026-11-02"}
R = "refused"
V = "review"

SCENARIOS: list[tuple[str, dict[str, Any], str, dict[str, tuple[str, str]]]] = [
    # --- Home Office tracing via schools (DfE MoU, 2016) ---
    (
        "dfe-national-pupil-database-trace",
        dict(
            requester=IE,
            holder="dfe",
            purpose="immigration_enforcement",
            legal_basis="dpa2018_sch2_p1_para4_immigration",
            subjects=[subject(child=True)],
            categories=["name", "address"],
        ),
        R,
        {
            "address": (R, "pledge/no-immigration-recipient"),
            "name": (R, "pledge/no-immigration-exemption"),
        },
    ),
    (
        "school-asked-directly-by-immigration-officer",
        dict(
            requester=IE,
            holder="st-marys-primary",
            purpose="immigration_control",
            legal_basis="dpa2018_sch2_p1_para2_crime",
            categories=["address"],
        ),
        R,
        {"address": (R, "pledge/no-immigration-purpose")},
    ),
    (
        "dfe-trace-with-court-order-still-refused",
        dict(
            requester=IE,
            holder="dfe",
            purpose="court_proceedings",
            legal_basis="court_order",
            court_order=CO,
            categories=["address"],
        ),
        R,
        {"address": (R, "pledge/no-immigration-recipient")},
    ),
    (
        "dfe-passes-on-to-home-office",
        dict(
            requester="dfe",
            holder="st-marys-primary",
            purpose="statutory_duty",
            legal_basis="statutory_gateway",
            onward_recipients=["immigration_enforcement"],
            categories=["address"],
        ),
        R,
        {"address": (R, "pledge/no-onward-immigration")},
    ),
    # --- Pupil nationality / country of birth census ---
    (
        "school-census-nationality",
        dict(
            requester="dfe",
            holder="st-marys-primary",
            purpose="statutory_duty",
            legal_basis="statutory_gateway",
            subjects=[subject(child=True)],
            categories=["nationality", "country_of_birth"],
        ),
        R,
        {
            "nationality": (R, "pledge/never-nationality"),
            "country_of_birth": (R, "pledge/never-nationality"),
        },
    ),
    (
        "school-census-attendance-not-permitted-by-default",
        dict(
            requester="dfe",
            holder="st-marys-primary",
            purpose="statutory_duty",
            legal_basis="statutory_gateway",
            categories=["attendance"],
        ),
        R,
        {"attendance": (R, "default-deny")},
    ),
    (
        "council-asks-school-for-immigration-status",
        dict(
            requester="islington-council",
            holder="st-marys-primary",
            purpose="safeguarding_child",
            legal_basis="children_act_1989_s47",
            categories=["immigration_status"],
        ),
        R,
        {"immigration_status": (R, "pledge/never-nationality")},
    ),
    # --- NHS Digital / DHSC MoU ---
    (
        "nhs-digital-address-trace",
        dict(
            requester=IE,
            holder="nhs-digital",
            purpose="immigration_enforcement",
            legal_basis="dpa2018_sch2_p1_para4_immigration",
            categories=["address", "name"],
        ),
        R,
        {"address": (R, "pledge/no-immigration-recipient")},
    ),
    (
        "nhs-trace-under-crime-exemption-s24",
        dict(
            requester=IE,
            holder="nhs-digital",
            purpose="prevention_detection_of_crime",
            legal_basis="dpa2018_sch2_p1_para2_crime",
            offence="immigration_act_1971_s24",
            categories=["address"],
        ),
        R,
        {"address": (R, "pledge/no-immigration-offence")},
    ),
    (
        "gp-practice-asked-for-nationality",
        dict(
            requester="dwp",
            holder="archway-medical-centre",
            purpose="benefit_administration",
            legal_basis="statutory_gateway",
            categories=["nationality"],
        ),
        R,
        {"nationality": (R, "pledge/never-nationality")},
    ),
    (
        "police-want-gp-records-without-order",
        dict(holder="archway-medical-centre", categories=["health_record", "address"]),
        V,
        {
            "health_record": (R, "pledge/court-order-health"),
            "address": (V, "local/police-crime-suspect"),
        },
    ),
    (
        "police-want-counselling-notes-without-order",
        dict(holder="camden-and-islington-mh", categories=["counselling_notes"]),
        R,
        {"counselling_notes": (R, "pledge/court-order-health")},
    ),
    (
        "council-wants-sexual-health-record",
        dict(
            requester="islington-council",
            holder="whittington-health",
            purpose="safeguarding_adult",
            legal_basis="care_act_2014_s42",
            categories=["sexual_health_record"],
        ),
        R,
        {"sexual_health_record": (R, "pledge/court-order-health")},
    ),
    # --- Crime exemption used for immigration status offences ---
    (
        "police-crime-exemption-s24-overstaying",
        dict(
            holder="archway-medical-centre",
            offence="immigration_act_1971_s24",
            categories=["address"],
        ),
        R,
        {"address": (R, "pledge/no-immigration-offence")},
    ),
    (
        "police-crime-exemption-s24a-deception",
        dict(
            holder="islington-council",
            offence="immigration_act_1971_s24a",
            categories=["name", "address"],
        ),
        R,
        {"name": (R, "pledge/no-immigration-offence")},
    ),
    (
        "police-crime-exemption-s26-with-court-order",
        dict(
            holder="islington-council",
            offence="immigration_act_1971_s26",
            court_order=CO,
            categories=["address"],
        ),
        R,
        {"address": (R, "pledge/no-immigration-offence")},
    ),
    (
        "para4-as-other-basis",
        dict(other_bases=["dpa2018_sch2_p1_para4_immigration"], categories=["name"]),
        R,
        {"name": (R, "pledge/no-immigration-exemption")},
    ),
    # --- Police referring victims and witnesses ---
    (
        "police-refer-rape-victim-to-home-office",
        dict(
            requester=IE,
            holder="met-police",
            purpose="immigration_enforcement",
            legal_basis="crime_and_disorder_act_1998_s115",
            subjects=[subject(victim=True)],
            categories=["name", "address"],
        ),
        R,
        {"address": (R, "pledge/no-victim-witness-referral")},
    ),
    (
        "police-ask-for-victim-address-without-consent",
        dict(holder="whittington-health", subjects=[subject(victim=True)], categories=["address"]),
        R,
        {"address": (R, "pledge/no-victim-witness-referral")},
    ),
    (
        "police-victim-with-consent",
        dict(
            holder="whittington-health",
            subjects=[subject(victim=True)],
            other_bases=["consent"],
            categories=["contact_details"],
        ),
        V,
        {"contact_details": (V, "local/police-victim-witness-consent")},
    ),
    (
        "police-witness-with-court-order",
        dict(
            holder="islington-council",
            subjects=[subject(victim=True)],
            court_order=CO,
            categories=["address"],
        ),
        V,
        {"address": (V, "local/court-order")},
    ),
    (
        "victim-support-with-consent",
        dict(
            requester="victim-support",
            holder="met-police",
            purpose="victim_support",
            legal_basis="consent",
            subjects=[subject(victim=True)],
            categories=["name", "contact_details"],
        ),
        V,
        {"name": (V, "local/victim-support-consent")},
    ),
    (
        "victim-support-without-consent",
        dict(
            requester="victim-support",
            holder="met-police",
            purpose="victim_support",
            legal_basis="statutory_gateway",
            subjects=[subject(victim=True)],
            categories=["contact_details"],
        ),
        R,
        {"contact_details": (R, "default-deny")},
    ),
    # --- Entitlement checks (DWP/HMRC, Cifas, DVLA) ---
    (
        "dwp-entitlement-check-address",
        dict(
            requester="dwp",
            holder="homes-for-haringey",
            purpose="entitlement_check",
            legal_basis="statutory_gateway",
            categories=["address", "contact_details"],
        ),
        R,
        {
            "address": (R, "pledge/entitlement-no-contact"),
            "contact_details": (R, "pledge/entitlement-no-contact"),
        },
    ),
    (
        "cifas-bank-account-check-onward-to-home-office",
        dict(
            requester="cifas",
            holder="dwp",
            purpose="fraud_prevention",
            legal_basis="statutory_gateway",
            onward_recipients=["immigration_enforcement"],
            categories=["name", "financial"],
        ),
        R,
        {"financial": (R, "pledge/no-onward-immigration")},
    ),
    (
        "hmrc-employment-records-to-home-office",
        dict(
            requester=IE,
            holder="hmrc",
            purpose="immigration_enforcement",
            legal_basis="dea2017_part5",
            categories=["employment", "address"],
        ),
        R,
        {"employment": (R, "pledge/no-immigration-recipient")},
    ),
    (
        "dvla-licence-check-address",
        dict(
            requester="dvla",
            holder="dwp",
            purpose="entitlement_check",
            legal_basis="dea2017_part5",
            categories=["address", "name"],
        ),
        R,
        {"address": (R, "pledge/entitlement-no-contact"), "name": (R, "default-deny")},
    ),
    (
        "council-housing-rough-sleeper-map",
        dict(
            requester="haringey-council",
            holder="homes-for-haringey",
            purpose="immigration_control",
            legal_basis="statutory_gateway",
            categories=["address"],
        ),
        R,
        {"address": (R, "pledge/no-immigration-purpose")},
    ),
    # --- Legitimate duties: these must reach human review ---
    (
        "police-theft-suspect-identifiers",
        dict(offence="theft_act_1968_s1", categories=["name", "address", "date_of_birth"]),
        V,
        {"name": (V, "local/police-crime-suspect")},
    ),
    (
        "police-suspect-financial-not-identifier",
        dict(categories=["financial"]),
        R,
        {"financial": (R, "default-deny")},
    ),
    (
        "crown-court-order-health-records",
        dict(
            requester="snaresbrook-crown-court",
            holder="whittington-health",
            purpose="court_proceedings",
            legal_basis="court_order",
            court_order=CO,
            categories=["health_record", "mental_health_record"],
        ),
        V,
        {"health_record": (V, "local/court-order")},
    ),
    (
        "council-court-order",
        dict(
            requester="islington-council",
            holder="st-marys-primary",
            purpose="court_proceedings",
            legal_basis="court_order",
            court_order=CO,
            categories=["education_record"],
        ),
        V,
        {"education_record": (V, "local/court-order")},
    ),
    (
        "child-protection-s47-enquiry",
        dict(
            requester="islington-council",
            holder="st-marys-primary",
            purpose="safeguarding_child",
            legal_basis="children_act_1989_s47",
            subjects=[subject(child=True)],
            categories=["attendance", "safeguarding_notes", "address"],
        ),
        V,
        {"safeguarding_notes": (V, "local/safeguarding-child-s47")},
    ),
    (
        "adult-safeguarding-s42-enquiry",
        dict(
            requester="haringey-council",
            holder="whittington-health",
            purpose="safeguarding_adult",
            legal_basis="care_act_2014_s42",
            categories=["health_summary", "financial"],
        ),
        V,
        {"health_summary": (V, "local/safeguarding-adult-s42")},
    ),
    (
        "gp-to-hospital-direct-care",
        dict(
            requester="whittington-health",
            holder="archway-medical-centre",
            purpose="direct_care",
            legal_basis="uk_gdpr_6_1_e_9_2_h_direct_care",
            categories=["health_record", "mental_health_record"],
        ),
        V,
        {"health_record": (V, "local/direct-care")},
    ),
    (
        "direct-care-claimed-by-non-health-body",
        dict(
            requester="islington-council",
            holder="archway-medical-centre",
            purpose="direct_care",
            legal_basis="uk_gdpr_6_1_e_9_2_h_direct_care",
            categories=["health_record"],
        ),
        R,
        {"health_record": (R, "pledge/court-order-health")},
    ),
    (
        "pupil-transfer-between-schools",
        dict(
            requester="highgate-wood-secondary",
            holder="st-marys-primary",
            purpose="pupil_transfer",
            legal_basis="education_pupil_information_regs_2005",
            subjects=[subject(child=True)],
            categories=["education_record", "attendance"],
        ),
        V,
        {"education_record": (V, "local/pupil-transfer")},
    ),
    (
        "threat-to-life-contact-only",
        dict(
            holder="camden-and-islington-mh",
            purpose="threat_to_life",
            legal_basis="vital_interests",
            categories=["address", "contact_details", "mental_health_record"],
        ),
        V,
        {
            "address": (V, "local/threat-to-life"),
            "mental_health_record": (R, "pledge/court-order-health"),
        },
    ),
    (
        "threat-to-life-claimed-by-immigration",
        dict(
            requester=IE,
            holder="whittington-health",
            purpose="threat_to_life",
            legal_basis="vital_interests",
            categories=["address"],
        ),
        R,
        {"address": (R, "pledge/no-immigration-recipient")},
    ),
    (
        "research-not-permitted-by-default",
        dict(
            requester="dfe",
            holder="st-marys-primary",
            purpose="research",
            legal_basis="statutory_gateway",
            categories=["education_record"],
        ),
        R,
        {"education_record": (R, "default-deny")},
    ),
]


@pytest.mark.parametrize(
    ("fields", "outcome", "expected"),
    [pytest.param(f, o, e, id=name) for name, f, o, e in SCENARIOS],
)
def test_scenario(
    engine: Engine,
    register: Register,
    fields: dict[str, Any],
    outcome: str,
    expected: dict[str, tuple[str, str]],
) -> None:
    decision = engine.decide(parse_request(request(**fields), register), register)
    doc = decision.to_json()
    assert doc["outcome"] == outcome
    for category, (cat_outcome, rule) in expected.items():
        assert doc["categories"][category]["outcome"] == cat_outcome
        assert rule in doc["categories"][category]["rules"]
        assert rule in doc["rules"]
    assert len(doc["reasons"]) == len(doc["rules"])
    assert doc["policy"] == engine.policy_hash
    assert "errors" not in doc
    # The review outcome is exactly "some category may be released".
    assert (decision.permitted != []) == (outcome == "review")


def test_at_least_thirty_scenarios() -> None:
    assert len(SCENARIOS) >= 30
    assert len({name for name, *_ in SCENARIOS}) == len(SCENARIOS)
