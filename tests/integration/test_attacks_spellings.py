"""A hostile requester and a careless admin, round two: spellings the other attack files miss.

test_attacks.py respells every id field six ways (newline, leading space, upper case,
Cyrillic o, zero-width joiner, full-width first letter); test_register_attacks.py tries
look-alike names letter by letter. This file tries what those leave out:

* offence ids that name an immigration status offence in another spelling (a leading zero
  in the section number, the 2004 Act's full short title), in a request and in a standing
  agreement;
* organisation names that name immigration enforcement with a letter from a script the
  look-alike table lacks (Cherokee, Lisu), or with a break inside a word;
* the same subject listed twice with contradicting facts, so that one copy slips past the
  victim/witness rule;
* more invisible and odd spellings of ids in the fields test_attacks.py only touches with
  three (onward recipients, other bases) or not at all (NBSP, tab, NUL, empty, very long);
* duplicate JSON keys inside nested objects and in the pledge's own fields; ids listed twice;
  JSON numbers and strings standing in for booleans;
* a careless admin's "permit everything" local policy, with a valid legal basis.

Each test asserts what carewall SHOULD do: refuse (a decision naming the pledge rule), or
reject the input with an error naming the field; never a 500, never a release.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import Tokens, api, reviewable
from click.testing import CliRunner
from fastapi.testclient import TestClient

from carewall.cli import main
from carewall.errors import CarewallError, InputError
from carewall.policy import parse_register
from carewall.policy.agreements import parse_agreement
from carewall.service import Service

Doc = dict[str, Any]
World = tuple[TestClient, Service, Tokens]

NO_IMM_OFFENCE = "pledge/no-immigration-offence"


def _base(**changes: Any) -> Doc:
    """The police theft request (examples/07): name and address go to review."""
    doc = copy.deepcopy(reviewable())
    doc.update(changes)
    return doc


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("spellings")
    with api(f"sqlite:///{tmp / 'spellings.db'}", tmp) as ctx:
        yield ctx


def _cli_decide(body: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["decide", "-"], input=body)
    assert "Traceback" not in r.output, r.output
    return r.exit_code, r.output


def _assert_cli_refused_or_rejected(body: str, rule: str, field: str) -> None:
    """``carewall decide``: exit 2 naming ``field``, or a refusal naming ``rule``."""
    code, out = _cli_decide(body)
    if code == 2:
        assert field in out, out
        return
    assert code == 0, out
    decision = json.loads(out)
    assert decision["outcome"] == "refused", f"not refused: {decision['outcome']} {out[:400]}"
    assert rule in decision["rules"], decision["rules"]


def _assert_http_refused_or_rejected(world: World, doc: Doc, rule: str, field: str) -> None:
    """``POST /api/requests``: 422 naming ``field``, or 201 refused naming ``rule``."""
    client, service, tokens = world
    r = client.post("/api/requests", json=doc, headers=tokens.auth("requester"))
    assert r.status_code < 500, r.text
    if r.status_code == 422:
        assert r.json()["field"] == field, r.text
        return
    assert r.status_code == 201, r.text
    got = r.json()
    record = service.get(got["id"])
    assert got["outcome"] == "refused", f"not refused: {got['outcome']} {record.decision}"
    assert rule in record.decision["rules"], record.decision["rules"]


# ----- 1. immigration status offences in other spellings ---------------------------------
#
# The offence grammar allows a section number of up to four digits, so a leading zero is a
# well-formed id; its Act is on the packaged list, so the log even carries it as written.
# But s024 is s24: an immigration status offence, and the crime exemption used to trace it.

LEADING_ZERO_OFFENCES = [
    "immigration_act_1971_s024",
    "immigration_act_1971_s0024",
    "immigration_act_1971_s024_1_b",
    "immigration_act_1971_s024a",
    "immigration_act_1971_s026",
    "asylum_and_immigration_act_2004_s02",
]


@pytest.mark.parametrize("offence", LEADING_ZERO_OFFENCES)
def test_offence_with_leading_zero_section_is_refused_cli(offence: str) -> None:
    body = json.dumps(_base(offence=offence))
    _assert_cli_refused_or_rejected(body, NO_IMM_OFFENCE, "offence")


@pytest.mark.parametrize("offence", LEADING_ZERO_OFFENCES)
def test_offence_with_leading_zero_section_is_refused_http(http: World, offence: str) -> None:
    _assert_http_refused_or_rejected(http, _base(offence=offence), NO_IMM_OFFENCE, "offence")


def test_offence_under_the_2004_acts_full_short_title_is_refused() -> None:
    """Section 2 of the Asylum and Immigration (Treatment of Claimants, etc.) Act 2004 is the
    contract's ``asylum_and_immigration_act_2004_s2``, written with the Act's full title."""
    offence = "asylum_and_immigration_treatment_of_claimants_etc_act_2004_s2"
    _assert_cli_refused_or_rejected(json.dumps(_base(offence=offence)), NO_IMM_OFFENCE, "offence")


@pytest.fixture(scope="module")
def plain_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("spellings-svc")
    svc = Service.init(
        f"sqlite:///{tmp / 's.db'}", None, "carewall.test/spellings", tmp / "k",
        operator="whittington-health",
    )  # fmt: skip
    try:
        yield svc
    finally:
        svc.close()


def test_agreement_for_a_leading_zero_immigration_offence_is_refused(
    plain_service: Service,
) -> None:
    """A careless admin registers a standing crime-exemption agreement with the police whose
    offence is s24 spelt s024: it must be refused like s24 is."""
    doc = {
        "id": "whittington-met-s024",
        "title": "Overstayer tracing (crime exemption)",
        "holder": "whittington-health",
        "recipient": "met-police",
        "purpose": "prevention_detection_of_crime",
        "legal_basis": "dpa2018_sch2_p1_para2_crime",
        "offence": "immigration_act_1971_s024",
        "categories": ["name", "address"],
        "start": "2026-01-01",
        "subjects": {"children": False, "victims_or_witnesses": False, "consent_required": False},
    }
    try:
        agreement = parse_agreement(doc)
    except InputError as e:
        assert e.field == "offence"
        return
    record = plain_service.register_agreement(agreement)
    assert record.state == "refused", (record.state, record.rules)
    assert NO_IMM_OFFENCE in record.rules


# ----- 2. organisation names that name immigration enforcement --------------------------------

DISGUISED_NAMES = [
    pytest.param("\u13bbome Office", id="cherokee-H"),  # Ꮋ
    pytest.param("\u13a5mmigration Enforcement", id="cherokee-i"),  # Ꭵ
    pytest.param("\ua4f2mmigration Compliance", id="lisu-I"),  # ꓲ
    pytest.param("Home \ua4f3ffice Liaison", id="lisu-O"),  # ꓳ
    pytest.param("Immi-gration Enforcement", id="hyphen-inside-word"),
    pytest.param("Immi gration Enforcement", id="space-inside-word"),
    pytest.param("Home Off-ice Liaison", id="hyphen-inside-office"),
    pytest.param("Hom e Office", id="space-inside-home"),
    pytest.param("UK Vi.sas Unit", id="dot-inside-visas"),
    pytest.param("B order Force", id="space-inside-border"),
]


@pytest.mark.parametrize("name", DISGUISED_NAMES)
def test_disguised_immigration_name_registered_as_police_is_refused(name: str) -> None:
    text = f'[[organisation]]\nid = "liaison"\nname = {json.dumps(name)}\nfunction = "police"\n'
    with pytest.raises(InputError) as e:
        parse_register(text)
    assert e.value.field in ("organisation[0].function", "organisation[0].name")


def test_disguised_immigration_name_added_on_the_cli_is_refused(tmp_path: Path) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'cw.db'}", "--key", str(tmp_path / "k")]
    runner = CliRunner()
    assert runner.invoke(main, ["init", *db]).exit_code == 0
    r = runner.invoke(
        main,
        ["register", "org", "add", "ho-liaison", "--name", "Immi-gration Enforcement",
         "--function", "police", *db],
    )  # fmt: skip
    assert "Traceback" not in r.output
    assert r.exit_code == 2, r.output
    assert "function" in r.output or "name" in r.output


def test_former_uk_border_agency_registered_as_police_is_refused() -> None:
    """UK Border Agency, the Home Office's immigration agency until 2013 (outside the
    contract's four terms, but an immigration enforcement body by name)."""
    text = '[[organisation]]\nid = "ukba"\nname = "UK Border Agency"\nfunction = "police"\n'
    with pytest.raises(InputError) as e:
        parse_register(text)
    assert e.value.field in ("organisation[0].function", "organisation[0].name")


# ----- 3. the same subject twice, once as a victim and once not -----------------------------


def test_same_subject_twice_with_contradicting_victim_flag(http: World) -> None:
    """The requester lists one person twice: as a victim (refused to police without consent)
    and as not a victim. A careless release must not send that person's data to the police
    under the second copy; better, the request is rejected naming subjects[1].ref."""
    client, service, tokens = http
    doc = _base(
        subjects=[
            {"ref": "DUP-4471", "is_child": False, "is_victim_or_witness": True},
            {"ref": "DUP-4471", "is_child": False, "is_victim_or_witness": False},
        ]
    )
    r = client.post("/api/requests", json=doc, headers=tokens.auth("requester"))
    assert r.status_code < 500, r.text
    if r.status_code == 422:
        assert r.json()["field"].startswith("subjects"), r.text
        return
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    if r.json()["outcome"] == "refused":
        return
    # The reviewer releases what the decision permits, without correcting anything.
    rv = client.post(f"/api/requests/{rid}/review", json={"release": True},
                     headers=tokens.auth("release"))  # fmt: skip
    assert rv.status_code < 500, rv.text
    record = service.get(rid)
    released_refs = set()
    if record.release is not None:
        for group in record.release.groups:
            released_refs |= {record.subjects[i].ref for i in group.subjects}
    assert "DUP-4471" not in released_refs, (
        "data of a subject the requester itself called a victim went to the police: "
        f"{record.release}"
    )


# ----- 4. odd spellings of ids in fields test_attacks.py covers thinly --------------------

ODD = {
    "nbsp-suffix": lambda s: s + "\u00a0",
    "tab-suffix": lambda s: s + "\t",
    "inner-tab": lambda s: s[:3] + "\t" + s[3:],
    "zero-width-space": lambda s: s[:3] + "\u200b" + s[3:],
    "nul-suffix": lambda s: s + "\x00",
    "carriage-return": lambda s: s + "\r",
    "title-case": lambda s: s[:1].upper() + s[1:],
    "fullwidth-all": lambda s: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s),
    "dotless-i": lambda s: s.replace("i", "\u0131", 1),
    "combining-dot": lambda s: s + "\u0307",
}

# (field named in errors, where in the document, the id the requester respells): ids whose
# respelling would, if accepted as "something else", let an immigration request through.
ODD_FIELDS = [
    ("onward_recipients[0]", "onward_recipients", "immigration_enforcement"),
    ("other_bases[0]", "other_bases", "dpa2018_sch2_p1_para4_immigration"),
    ("purpose", "purpose", "immigration_control"),
    ("categories[0]", "categories", "nationality"),
]


def _odd_doc(path: str, value: str) -> Doc:
    doc = _base()
    if path in ("onward_recipients", "other_bases", "categories"):
        doc[path] = [value]
    else:
        doc[path] = value
    return doc


ODD_CASES = [
    pytest.param(field, path, spell(value), id=f"{field}-{name}")
    for field, path, value in ODD_FIELDS
    for name, spell in ODD.items()
] + [
    pytest.param("purpose", "purpose", "", id="purpose-empty"),
    pytest.param("purpose", "purpose", "immigration_control" * 50_000, id="purpose-950k-chars"),
    pytest.param("onward_recipients[0]", "onward_recipients", "", id="onward-empty"),
    pytest.param("onward_recipients[0]", "onward_recipients", "home-office-ie", id="onward-org-id"),
    pytest.param("onward_recipients[0]", "onward_recipients", "immigration", id="onward-short"),
    pytest.param("purpose", "purpose", "immigration", id="purpose-synonym-immigration"),
    pytest.param("purpose", "purpose", "deportation", id="purpose-synonym-deportation"),
    pytest.param("purpose", "purpose", "border_control", id="purpose-synonym-border"),
    pytest.param("legal_basis", "legal_basis", "dpa2018_sch2_p1_para4", id="basis-para4-truncated"),
    pytest.param("legal_basis", "legal_basis", "dpa_2018_sch_2_para_4", id="basis-para4-respelt"),
]


@pytest.mark.parametrize(("field", "path", "value"), ODD_CASES)
def test_odd_id_spelling_is_rejected_cli(field: str, path: str, value: str) -> None:
    code, out = _cli_decide(json.dumps(_odd_doc(path, value)))
    assert code == 2, out[:400]
    assert f"{field}:" in out or f"{field} " in out, out[:400]


@pytest.mark.parametrize(("field", "path", "value"), ODD_CASES)
def test_odd_id_spelling_is_rejected_http(http: World, field: str, path: str, value: str) -> None:
    client, service, tokens = http
    before = service.ledger.size()
    r = client.post("/api/requests", json=_odd_doc(path, value), headers=tokens.auth("requester"))
    assert r.status_code == 422, r.text[:400]
    assert r.json()["field"] == field, r.text[:400]
    assert service.ledger.size() == before


# ----- 5. duplicate keys, ids listed twice, wrong JSON types -----------------------------


def _raw(doc: Doc, key_path: tuple[str, ...], first: Any) -> str:
    """``doc`` as JSON, with ``first`` written before the real value of the key at
    ``key_path`` (a duplicate key: a last-wins parser would keep the second)."""
    text = json.dumps(doc)
    *parents, key = key_path
    real = doc
    for p in parents:
        real = real[int(p)] if p.isdigit() else real[p]
    needle = f"{json.dumps(key)}: {json.dumps(real[key])}"
    assert needle in text, (needle, text)
    return text.replace(needle, f"{json.dumps(key)}: {json.dumps(first)}, {needle}", 1)


DUPLICATE_KEYS = [
    # the first copy says what the second hides; either way the document is ambiguous
    pytest.param(("onward_recipients",), ["immigration_enforcement"], id="onward-twice"),
    pytest.param(("purpose",), "immigration_control", id="purpose-twice"),
    pytest.param(("subjects", "0", "is_victim_or_witness"), True, id="subject-victim-twice"),
    pytest.param(("subjects", "0", "is_child"), True, id="subject-child-twice"),
    pytest.param(("officer", "name"), "Immigration Officer", id="nested-officer-name-twice"),
]


@pytest.mark.parametrize(("key_path", "first"), DUPLICATE_KEYS)
def test_duplicate_key_is_rejected_cli(key_path: tuple[str, ...], first: Any) -> None:
    code, out = _cli_decide(_raw(_base(), key_path, first))
    assert code == 2, out[:400]
    assert "twice" in out, out[:400]


@pytest.mark.parametrize(("key_path", "first"), DUPLICATE_KEYS)
def test_duplicate_key_is_rejected_http(http: World, key_path: tuple[str, ...], first: Any) -> None:
    client, service, tokens = http
    before = service.ledger.size()
    headers = {**tokens.auth("requester"), "Content-Type": "application/json"}
    r = client.post("/api/requests", content=_raw(_base(), key_path, first).encode(),
                    headers=headers)  # fmt: skip
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "request", r.text
    assert service.ledger.size() == before


def test_duplicate_requester_key_cannot_impersonate_over_http(http: World) -> None:
    """The token's organisation (met-police) first, a different requester second: refused,
    whichever copy a parser would keep, and nothing recorded."""
    client, service, tokens = http
    before = service.ledger.size()
    body = _raw(_base(requester="dwp"), ("requester",), "met-police")
    headers = {**tokens.auth("requester"), "Content-Type": "application/json"}
    r = client.post("/api/requests", content=body.encode(), headers=headers)
    assert r.status_code in (403, 422), r.text
    assert service.ledger.size() == before


LISTED_TWICE = [
    pytest.param("categories", ["name", "name"], "categories[1]", id="category-twice"),
    pytest.param(
        "categories", ["nationality", "name", "nationality"], "categories[2]",
        id="nationality-twice",
    ),
    pytest.param(
        "onward_recipients", ["police", "police"], "onward_recipients[1]", id="onward-twice"
    ),
    pytest.param("other_bases", ["consent", "consent"], "other_bases[1]", id="basis-twice"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "value", "field"), LISTED_TWICE)
def test_id_listed_twice_is_rejected(http: World, key: str, value: Any, field: str) -> None:
    client, _, tokens = http
    code, out = _cli_decide(json.dumps(_base(**{key: value})))
    assert code == 2 and field in out, out[:400]
    r = client.post("/api/requests", json=_base(**{key: value}), headers=tokens.auth("requester"))
    assert r.status_code == 422 and r.json()["field"] == field, r.text


WRONG_TYPES = [
    pytest.param({"prejudice": "false"}, "prejudice", id="prejudice-string"),
    pytest.param({"prejudice": 0}, "prejudice", id="prejudice-zero"),
    pytest.param(
        {"subjects": [{"ref": "S-1", "is_child": 0, "is_victim_or_witness": False}]},
        "subjects[0].is_child", id="is-child-zero",
    ),
    pytest.param(
        {"subjects": [{"ref": "S-1", "is_child": False, "is_victim_or_witness": 0.0}]},
        "subjects[0].is_victim_or_witness", id="victim-float-zero",
    ),
    pytest.param(
        {"subjects": [{"ref": 9434765919, "is_child": False, "is_victim_or_witness": False}]},
        "subjects[0].ref", id="ref-number",
    ),
    pytest.param({"onward_recipients": "immigration_enforcement"}, "onward_recipients",
                 id="onward-string-not-list"),
    pytest.param({"onward_recipients": None}, "onward_recipients", id="onward-null"),
    pytest.param({"other_bases": None}, "other_bases", id="other-bases-null"),
    pytest.param({"categories": [["name"]]}, "categories[0]", id="category-nested-list"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "field"), WRONG_TYPES)
def test_wrong_json_type_is_rejected(http: World, changes: Doc, field: str) -> None:
    client, _, tokens = http
    code, out = _cli_decide(json.dumps(_base(**changes)))
    assert code == 2 and field in out, out[:400]
    r = client.post("/api/requests", json=_base(**changes), headers=tokens.auth("requester"))
    assert r.status_code == 422 and r.json()["field"] == field, r.text


# ----- 6. a careless admin's "permit everything" local policy ---------------------------

PERMIT_ALL = (
    '@id("local/everything")\n@legal_basis("consent")\npermit (principal, action, resource);\n'
)

IMMIGRATION_REQUESTS = [
    pytest.param({"requester": "home-office-ie"}, "pledge/no-immigration-recipient",
                 id="home-office-asks"),
    pytest.param({"purpose": "immigration_control"}, "pledge/no-immigration-purpose",
                 id="police-immigration-purpose"),
    pytest.param({"onward_recipients": ["immigration_enforcement"]},
                 "pledge/no-onward-immigration", id="police-onward-to-immigration"),
    pytest.param({"offence": "immigration_act_1971_s24_1_b"}, NO_IMM_OFFENCE,
                 id="police-immigration-offence"),
    pytest.param({"categories": ["immigration_status"]}, "pledge/never-nationality",
                 id="police-immigration-status"),
    pytest.param({"legal_basis": "dpa2018_sch2_p1_para4_immigration", "offence": None},
                 "pledge/no-immigration-exemption", id="police-immigration-exemption"),
]  # fmt: skip


@pytest.fixture(scope="module")
def permissive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("permissive")
    svc = Service.init(
        f"sqlite:///{tmp / 'p.db'}", None, "carewall.test/permissive", tmp / "k",
        operator="islington-council",
    )  # fmt: skip
    try:
        svc.set_local_policy(PERMIT_ALL)
        yield svc
    finally:
        svc.close()


@pytest.mark.parametrize(("changes", "rule"), IMMIGRATION_REQUESTS)
def test_permit_everything_local_policy_still_refuses(
    permissive: Service, changes: Doc, rule: str
) -> None:
    doc = _base(**changes)
    if doc.get("offence") is None:
        doc.pop("offence", None)
    submitted = permissive.submit(doc)
    record = permissive.get(submitted.id)
    assert submitted.outcome == "refused", record.decision
    assert rule in record.decision["rules"]
    with pytest.raises(CarewallError):
        permissive.review(submitted.id, "dpo-islington", True)
    assert permissive.get(submitted.id).release is None
