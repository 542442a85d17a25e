"""A hostile requester against the firewall: named attacks on the request document.

Each row is one way someone might try to get round the pledge: an id spelt so that a
validator lets it through, an offence written so that the immigration rule misses it, a
court order of blank strings, free text smuggled into the public log, consent claimed for a
whole request. Each is tried through both public doors, ``carewall decide`` (the CLI) and
``POST /api/requests`` (HTTP), and must end in the refusal named in the row: an input error
naming the field, or a policy refusal naming the pledge rule. Nothing here may ever be
released or reach the log as free text.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_support import api
from click.testing import CliRunner
from fastapi.testclient import TestClient

from carewall.cli import main

Doc = dict[str, Any]
Mutate = Callable[[Doc], None]


def _base() -> Doc:
    """A valid police request for a theft suspect's name and address (decided: review)."""
    return {
        "reference": "MPS-2026-000123",
        "requester": "met-police",
        "holder": "islington-council",
        "purpose": "prevention_detection_of_crime",
        "legal_basis": "dpa2018_sch2_p1_para2_crime",
        "offence": "theft_act_1968_s1",
        "subjects": [{"ref": "ISL-CRN-88213", "is_child": False, "is_victim_or_witness": False}],
        "categories": ["name", "address"],
        "other_bases": [],
        "onward_recipients": [],
    }


@dataclass(frozen=True)
class Attack:
    name: str
    mutate: Mutate
    # ("input", field): refused as malformed, naming the field;
    # ("refused", rule): decided and refused, naming the pledge rule;
    # ("review", None): a control that must NOT be refused (the rule is not over-broad).
    expect: tuple[str, str | None]


def _set(path: str, value: Any) -> Mutate:
    def mutate(doc: Doc) -> None:
        target: Any = doc
        parts = path.split(".")
        for p in parts[:-1]:
            target = target[int(p)] if p.isdigit() else target[p]
        last = parts[-1]
        if last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


def _all(*steps: Mutate) -> Mutate:
    def mutate(doc: Doc) -> None:
        for s in steps:
            s(doc)

    return mutate


def _drop(key: str) -> Mutate:
    def mutate(doc: Doc) -> None:
        doc.pop(key, None)

    return mutate


# Ways of spelling an id so that it looks the same to a person but is a different string.
SPELLINGS: dict[str, Callable[[str], str]] = {
    "trailing-newline": lambda s: s + "\n",
    "leading-space": lambda s: " " + s,
    "upper-case": lambda s: s.upper(),
    "cyrillic-o": lambda s: s.replace("o", "\u043e", 1) if "o" in s else "\u043e" + s,
    "zero-width-joiner": lambda s: s[:2] + "\u200d" + s[2:],
    "fullwidth-first": lambda s: chr(ord(s[0]) + 0xFEE0) + s[1:],
}

# Every id-bearing field of the request, with the valid id the attack respells.
ID_FIELDS: dict[str, tuple[str, str]] = {
    "requester": ("requester", "met-police"),
    "holder": ("holder", "islington-council"),
    "purpose": ("purpose", "prevention_detection_of_crime"),
    "legal_basis": ("legal_basis", "dpa2018_sch2_p1_para2_crime"),
    "categories[0]": ("categories.0", "name"),
    "offence": ("offence", "theft_act_1968_s1"),
}


def _id_attacks() -> list[Attack]:
    out = []
    for shown, (path, value) in ID_FIELDS.items():
        for spelling, spell in SPELLINGS.items():
            out.append(Attack(f"{shown}-{spelling}", _set(path, spell(value)), ("input", shown)))
    # lists that are empty in the base document: the attack adds a respelt id
    for shown, key, value in (
        ("other_bases[0]", "other_bases", "consent"),
        ("onward_recipients[0]", "onward_recipients", "immigration_enforcement"),
    ):
        for spelling in ("trailing-newline", "upper-case", "cyrillic-o"):
            out.append(
                Attack(
                    f"{shown}-{spelling}",
                    _set(key, [SPELLINGS[spelling](value)]),
                    ("input", shown),
                )
            )
    return out


NO_IMM_OFFENCE = "pledge/no-immigration-offence"

OFFENCE_ATTACKS = [
    Attack(f"offence-{o}", _set("offence", o), ("refused", NO_IMM_OFFENCE))
    for o in (
        "immigration_act_1971_s24",
        "immigration_act_1971_s24a",
        "immigration_act_1971_s24b",
        "immigration_act_1971_s24_1_b",
        "immigration_act_1971_s24a_1",
        "immigration_act_1971_s26",
        "immigration_act_1971_s26_1_c",
        "asylum_and_immigration_act_2004_s2",
        "asylum_and_immigration_act_2004_s2_1",
        "asylum_and_immigration_act_2004_s2a",
    )
] + [
    Attack(
        "immigration-offence-with-court-order",
        _all(
            _set("offence", "immigration_act_1971_s24_1_b"),
            _set("court_order", {"reference": "T1", "court": "Snaresbrook", "date": "2026-01-02"}),
        ),
        ("refused", NO_IMM_OFFENCE),
    ),
    Attack(
        "immigration-offence-under-other-basis",
        _all(
            _set("legal_basis", "consent"),
            _set("other_bases", ["dpa2018_sch2_p1_para2_crime"]),
            _set("offence", "immigration_act_1971_s24"),
        ),
        ("refused", NO_IMM_OFFENCE),
    ),
    Attack("offence-missing-with-crime-basis", _drop("offence"), ("input", "offence")),
    Attack("offence-null-with-crime-basis", _set("offence", None), ("input", "offence")),
    Attack(
        "offence-missing-with-crime-as-other-basis",
        _all(
            _set("legal_basis", "consent"),
            _set("other_bases", ["dpa2018_sch2_p1_para2_crime"]),
            _drop("offence"),
        ),
        ("input", "offence"),
    ),
    Attack("offence-free-text-name", _set("offence", "John Smith"), ("input", "offence")),
    Attack("offence-nhs-number", _set("offence", "9434765919"), ("input", "offence")),
    Attack(
        "offence-name-in-id-shape",
        _set("offence", "john_smith_of_highgate_1990_s1_nhs9434765919"),
        ("input", "offence"),
    ),
    Attack("offence-blank", _set("offence", ""), ("input", "offence")),
    Attack("offence-not-a-string", _set("offence", 24), ("input", "offence")),
    # controls: neighbouring sections are not immigration status offences
    Attack("control-offence-s25", _set("offence", "immigration_act_1971_s25"), ("review", None)),
    Attack(
        "control-offence-unlisted-act",
        _set("offence", "made_up_act_2020_s1"),
        ("review", None),
    ),
]

_ORDER = {"reference": "T20267781", "court": "Snaresbrook Crown Court", "date": "2026-11-02"}


def _order(**changes: Any) -> Mutate:
    return _all(
        _set("legal_basis", "court_order"),
        _drop("offence"),
        _set("court_order", {**_ORDER, **changes}),
    )


COURT_ORDER_ATTACKS = [
    Attack(
        "court-order-blank-reference", _order(reference="   "), ("input", "court_order.reference")
    ),
    Attack("court-order-empty-reference", _order(reference=""), ("input", "court_order.reference")),
    Attack("court-order-blank-court", _order(court="\t \n"), ("input", "court_order.court")),
    Attack("court-order-future-date", _order(date="2999-01-01"), ("input", "court_order.date")),
    Attack("court-order-impossible-date", _order(date="2026-02-30"), ("input", "court_order.date")),
    Attack("court-order-basic-date", _order(date="20261102"), ("input", "court_order.date")),
    Attack("court-order-week-date", _order(date="2026-W44-1"), ("input", "court_order.date")),
    Attack(
        "court-order-not-an-object",
        _all(_order(), _set("court_order", "yes")),
        ("input", "court_order"),
    ),
    Attack(
        "court-order-basis-without-order",
        _all(_set("legal_basis", "court_order"), _drop("offence")),
        ("input", "court_order"),
    ),
    Attack(
        "court-order-other-basis-without-order",
        _set("other_bases", ["court_order"]),
        ("input", "court_order"),
    ),
    Attack("court-order-unknown-field", _order(judge="X"), ("input", "court_order.judge")),
]


def _victim(consent: bool | None = None) -> Mutate:
    subject: dict[str, Any] = {"ref": "V-1", "is_child": False, "is_victim_or_witness": True}
    if consent is not None:
        subject["consent"] = consent
    return _set("subjects", [subject])


PLEDGE_ATTACKS = [
    Attack(
        "victim-to-council-with-police-onward",
        _all(
            _set("requester", "islington-council"),
            _set("holder", "st-marys-primary"),
            _set("purpose", "safeguarding_child"),
            _set("legal_basis", "children_act_1989_s47"),
            _drop("offence"),
            _set("onward_recipients", ["police"]),
            _set("subjects", [{"ref": "C-1", "is_child": True, "is_victim_or_witness": True}]),
        ),
        ("refused", "pledge/no-victim-witness-referral"),
    ),
    Attack(
        "victim-consent-basis-but-subject-says-no",
        _all(_set("other_bases", ["consent"]), _victim(consent=False)),
        ("refused", "pledge/no-victim-witness-referral"),
    ),
    Attack(
        "victim-to-police-no-consent", _victim(), ("refused", "pledge/no-victim-witness-referral")
    ),
    Attack(
        "counselling-notes-held-by-a-school",
        _all(
            _set("requester", "islington-council"),
            _set("holder", "st-marys-primary"),
            _set("purpose", "safeguarding_child"),
            _set("legal_basis", "children_act_1989_s47"),
            _drop("offence"),
            _set("categories", ["counselling_notes"]),
            _set("subjects", [{"ref": "C-1", "is_child": True, "is_victim_or_witness": False}]),
        ),
        ("refused", "pledge/court-order-health"),
    ),
    Attack(
        "mental-health-record-held-by-a-council",
        _set("categories", ["mental_health_record"]),
        ("refused", "pledge/court-order-health"),
    ),
    Attack(
        "home-office-asks-as-itself",
        _set("requester", "home-office-ie"),
        ("refused", "pledge/no-immigration-recipient"),
    ),
    Attack(
        "nationality-and-country-of-birth",
        _set("categories", ["nationality", "country_of_birth"]),
        ("refused", "pledge/never-nationality"),
    ),
    Attack(
        "immigration-exemption-as-other-basis",
        _set("other_bases", ["dpa2018_sch2_p1_para4_immigration"]),
        ("refused", "pledge/no-immigration-exemption"),
    ),
]

SUBJECT_ATTACKS = [
    Attack(
        "subject-ref-blank",
        _set("subjects", [{"ref": "  ", "is_child": False, "is_victim_or_witness": False}]),
        ("input", "subjects[0].ref"),
    ),
    Attack(
        "subject-victim-flag-missing",
        _set("subjects", [{"ref": "X", "is_child": False}]),
        ("input", "subjects[0].is_victim_or_witness"),
    ),
    Attack(
        "subject-victim-flag-as-string",
        _set("subjects", [{"ref": "X", "is_child": False, "is_victim_or_witness": "false"}]),
        ("input", "subjects[0].is_victim_or_witness"),
    ),
    Attack(
        "subject-consent-as-string",
        _set(
            "subjects",
            [{"ref": "X", "is_child": False, "is_victim_or_witness": True, "consent": "yes"}],
        ),
        ("input", "subjects[0].consent"),
    ),
]

ATTACKS: list[Attack] = (
    _id_attacks() + OFFENCE_ATTACKS + COURT_ORDER_ATTACKS + PLEDGE_ATTACKS + SUBJECT_ATTACKS
)


def test_the_table_is_large_and_named_once() -> None:
    names = [a.name for a in ATTACKS]
    assert len(names) == len(set(names))
    assert len([a for a in ATTACKS if a.expect[0] != "review"]) >= 60


def _doc(attack: Attack) -> Doc:
    doc = copy.deepcopy(_base())
    attack.mutate(doc)
    return doc


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_attack_through_the_cli(attack: Attack) -> None:
    result = CliRunner().invoke(main, ["decide", "-"], input=json.dumps(_doc(attack)))
    kind, what = attack.expect
    if kind == "input":
        assert result.exit_code == 2, result.output
        assert f"{what}:" in result.output or f"{what} " in result.output, result.output
        assert "Traceback" not in result.output
        return
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    if kind == "refused":
        assert decision["outcome"] == "refused"
        assert what in decision["rules"]
    else:
        assert decision["outcome"] == "review"


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Any, Any]]:
    tmp: Path = tmp_path_factory.mktemp("attacks")
    with api(f"sqlite:///{tmp / 'attacks.db'}", tmp) as ctx:
        yield ctx


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_attack_through_http(attack: Attack, http: tuple[TestClient, Any, Any]) -> None:
    client, service, tokens = http
    doc = _doc(attack)
    # A token submits only for its own organisation; the attacks on `requester` are sent
    # with the token of the organisation they claim to be, or refused before any decision.
    before = service.ledger.size()
    r = client.post("/api/requests", json=doc, headers=tokens.auth("requester"))
    kind, what = attack.expect
    if doc.get("requester") != "met-police":
        assert r.status_code == 403, r.text
        assert service.ledger.size() == before
        return
    if kind == "input":
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["field"] == what, body
        assert service.ledger.size() == before  # nothing half-recorded
        return
    assert r.status_code == 201, r.text
    got = r.json()
    record = service.get(got["id"])
    if kind == "refused":
        assert got["outcome"] == "refused"
        assert what in record.decision["rules"]
    else:
        assert got["outcome"] == "review"
    # whatever the requester wrote, the public log carries only ids and "unlisted"
    for raw in service.ledger.entries(before, service.ledger.size()):
        entry = json.loads(raw)
        if entry["kind"] == "request":
            assert entry["offence"] in (None, "unlisted") or entry["offence"] == doc.get("offence")
            assert "John" not in raw.decode() and "9434765919" not in raw.decode()


def test_unlisted_act_is_logged_as_unlisted(http: tuple[TestClient, Any, Any]) -> None:
    client, service, tokens = http
    doc = _base() | {"offence": "made_up_act_2020_s1"}
    r = client.post("/api/requests", json=doc, headers=tokens.auth("requester"))
    assert r.status_code == 201, r.text
    (raw,) = service.ledger.entries(r.json()["log_index"] - 1, r.json()["log_index"])
    entry = json.loads(raw)
    assert entry["kind"] == "request"
    assert entry["offence"] == "unlisted"
