"""The label catalogue: every id the package uses has a plain label and sentence, and every
log entry kind can be said in plain words without a subject's commitment or any hash."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

import jsonschema_rs
import pytest

import carewall
from carewall.cli.demo_year import fill_year
from carewall.entries import KINDS as ENTRY_KINDS
from carewall.entries import subject_commitment
from carewall.entry_schema import kind_schema
from carewall.labels import Label, catalogue, describe_entry, label, sentence
from carewall.policy.decision import BUILTIN_REASONS
from carewall.policy.decision import Outcome as CategoryOutcome
from carewall.service import Service
from carewall.service.lifecycle import Outcome, Stage
from carewall.service.records import AppealRecord, NoticeRecord
from carewall.statistics import DIMENSIONS
from carewall.statistics import OUTCOMES as STAT_OUTCOMES
from carewall.vocab import KINDS as VOCAB_KINDS
from carewall.vocab import vocabulary

PACKAGE = Path(carewall.__file__).parent
HEX64 = re.compile(r"[0-9a-f]{64}")


def cedar_ids(name: str) -> list[str]:
    text = (PACKAGE / "policy" / name).read_text("utf-8")
    return re.findall(r'@id\("([^"]+)"\)', text)


PLEDGE_RULES = cedar_ids("pledge.cedar")
DEFAULT_RULES = cedar_ids("default.cedar")

# Every event the service records in a request's private record: the kind given to each
# ``_event(conn, id, "kind", …)`` or ``_event_row(id, "kind", …)`` call in its source, and
# ``"appeal_" + result`` for each result an appeal can have.
_EVENT_CALL = re.compile(r'_event(?:_row)?\((?:\s*conn,)?\s*[\w.]+,\s*"([a-z_]+)"(\s*\+)?')
_APPEAL_RESULTS = get_args(get_args(AppealRecord.model_fields["result"].annotation)[0])


def event_kinds() -> set[str]:
    found: set[str] = set()
    for path in sorted((PACKAGE / "service").glob("*.py")):
        for m in _EVENT_CALL.finditer(path.read_text("utf-8")):
            found |= {m[1] + r for r in _APPEAL_RESULTS} if m[2] else {m[1]}
    return found


EVENT_KINDS = event_kinds()

# Every id each kind of the catalogue must hold: exactly these, no more, no fewer.
EXPECTED: dict[str, set[str]] = {
    **{kind: set(ids) for kind, ids in vocabulary().items()},
    "state": {s.value for s in Stage},
    "outcome": {o.value for o in Outcome} | set(get_args(CategoryOutcome)),
    "notice_status": set(get_args(NoticeRecord.model_fields["status"].annotation)),
    "entry": set(ENTRY_KINDS),
    "rule": {*PLEDGE_RULES, *DEFAULT_RULES, *BUILTIN_REASONS},
    "event": EVENT_KINDS,
    "dimension": set(DIMENSIONS),
    "statistic_outcome": set(STAT_OUTCOMES),
}
ALL = [(kind, id) for kind, ids in sorted(EXPECTED.items()) for id in sorted(ids)]


def test_the_service_sources_were_read_for_event_kinds() -> None:
    # the lifecycle's events, so a regular expression that matched nothing cannot pass
    assert {
        "received", "decided", "reviewed", "released", "appeal_lodged", "appeal_upheld",
        "appeal_overturned", "withdrawn", "deferred", "deferral_renewed", "deferral_lifted",
    } <= EVENT_KINDS  # fmt: skip
    assert _APPEAL_RESULTS == ("upheld", "overturned")


def test_the_policy_files_were_read() -> None:
    assert len(PLEDGE_RULES) == 9 and all(r.startswith("pledge/") for r in PLEDGE_RULES)
    assert DEFAULT_RULES and all(r.startswith("local/") for r in DEFAULT_RULES)
    assert set(VOCAB_KINDS) <= set(EXPECTED)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_each_kind_holds_exactly_the_ids_the_package_uses(kind: str) -> None:
    assert set(catalogue()[kind]) == EXPECTED[kind]


def test_no_kind_in_the_catalogue_is_unchecked() -> None:
    assert set(catalogue()) == set(EXPECTED)


@pytest.mark.parametrize(("kind", "id"), ALL)
def test_every_id_has_a_label_and_a_sentence(kind: str, id: str) -> None:
    entry = catalogue()[kind][id]
    assert isinstance(entry, Label)
    assert entry.label and entry.label == entry.label.strip()
    assert entry.sentence and entry.sentence == entry.sentence.strip()
    assert label(kind, id) == entry.label and sentence(kind, id) == entry.sentence
    assert not entry.label.endswith("."), "a label has no full stop"
    assert entry.label[0].isupper(), "a label is in sentence case"
    assert entry.sentence.endswith("."), "a sentence ends with a full stop"
    assert entry.sentence[0].isupper()
    assert len(entry.sentence) <= 300, "one or two short sentences"
    for text in (entry.label, entry.sentence):
        assert "please" not in text.lower()
        assert "  " not in text


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_labels_are_unique_within_a_kind(kind: str) -> None:
    labels = [e.label.lower() for e in catalogue()[kind].values()]
    assert len(labels) == len(set(labels))


def test_the_catalogue_cannot_be_changed_by_a_caller() -> None:
    with pytest.raises(TypeError):
        catalogue()["function"]["police"] = Label("x", "y.")  # type: ignore[index]
    with pytest.raises(AttributeError):
        catalogue()["function"]["police"].label = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kind", "id", "shown"),
    [
        ("purpose", "new_local_purpose", "new local purpose"),
        ("rule", "local/my_new-rule", "local/my new-rule"),
        ("no_such_kind", "police", "police"),
        ("category", "<script>alert(1)</script>", "<script>alert(1)</script>"),
        ("function", "Police", "Police"),  # a different case is a different id
        ("function", "police\n", "police\n"),
        ("function", "", ""),
    ],
)
def test_an_unknown_id_falls_back_to_itself(kind: str, id: str, shown: str) -> None:
    assert label(kind, id) == shown
    assert sentence(kind, id) == ""


# ----- describe_entry ----------------------------------------------------------------------

TIME = "2026-11-21T10:00:00Z"
POLICY = "sha256:" + "ab" * 32
RID = "r0123456789abcdef0123"
COMMITMENT = subject_commitment(b"holder key", RID, "9434765919")
FACTS: dict[str, Any] = {
    "request": RID,
    "holder": "st-marys-primary",
    "holder_function": "education",
    "requester": "met-police",
    "requester_function": "police",
    "purpose": "prevention_detection_of_crime",
    "legal_basis": "dpa2018_sch2_p1_para2_crime",
    "other_bases": ["court_order"],
    "offence": "immigration_act_1971_s24a_1_b",
    "court_order": True,
    "onward_recipients": ["immigration_enforcement"],
    "categories": ["name", "address"],
    "subjects": 3,
    "victims_or_witnesses": 1,
}
GROUP = {"is_child": True, "is_victim_or_witness": False, "consent": False, "subjects": 2}
VICTIM = {"is_child": False, "is_victim_or_witness": True, "consent": True, "subjects": 1}

EXAMPLES: dict[str, dict[str, Any]] = {
    "policy": {
        "policy": POLICY,
        "pledge": "sha256:" + "cd" * 32,
        "rules": [*PLEDGE_RULES, *DEFAULT_RULES],
        "change": "update",
        "text": "// the local policy",
    },
    "organisation": {
        "id": "st-marys-primary",
        "name": "St Mary's Primary School",
        "function": "education",
        "change": "add",
    },
    "reviewer": {
        "id": "dpo-st-marys",
        "organisation": "st-marys-primary",
        "roles": ["release_reviewer", "appeal_reviewer"],
        "change": "update",
    },
    "request": {**FACTS, "groups": [GROUP, VICTIM], "subjects_root": "ef" * 32},
    "decision": {
        "request": RID,
        "outcome": "review",
        "categories": {
            "name": {"outcome": "review", "rules": ["local/police-crime-suspect"]},
            "nationality": {"outcome": "refused", "rules": ["pledge/never-nationality"]},
        },
        "rules": ["local/police-crime-suspect", "pledge/never-nationality"],
        "policy": POLICY,
    },
    "review": {
        "request": RID,
        "outcome": "released",
        "reviewer": "dpo-st-marys",
        "categories": ["name"],
        "groups": [GROUP],
        "corrected": 1,
    },
    "release": {
        **FACTS,
        "subjects": 2,
        "victims_or_witnesses": 0,
        "is_child": True,
        "is_victim_or_witness": False,
        "consent": True,
        "recipient": "met-police",
        "recipient_function": "police",
        "reviewer": "dpo-st-marys",
        "policy": POLICY,
        "file": None,
    },
    "appeal": {"request": RID, "by": "subject", "stage": "overturned", "reviewer": "appeals-x"},
    "notice": {
        "request": RID,
        "subject": COMMITMENT,
        "subject_position": 1,
        "subject_path": ["cd" * 32],
        "status": "sent",
    },
    "deferral": {
        "request": RID,
        "action": "renewed",
        "reviewer": "dpo-st-marys",
        "subjects": 2,
        "review_date": "2027-01-31",
    },
    "withdrawal": {"request": RID, "by": "met-police"},
    "deletion": {
        "holder": "st-marys-primary",
        "categories": ["attendance", "education_record"],
        "records": 120,
        "certificate": POLICY,
    },
    "agreement": {
        "agreement": "dfe-ho-npd-mou-2016",
        "action": "refused",
        "holder": "dfe",
        "holder_function": "education",
        "recipient": "home-office-ie",
        "recipient_function": "immigration_enforcement",
        "purpose": "immigration_enforcement",
        "legal_basis": "dpa2018_sch2_p1_para2_crime",
        "other_bases": [],
        "offence": "immigration_act_1971_s24",
        "onward_recipients": [],
        "categories": ["name", "address"],
        "children": True,
        "victims_or_witnesses": True,
        "consent_required": False,
        "start": "2015-06-01",
        "end": "2016-10-07",
        "rules": ["pledge/no-immigration-recipient", "pledge/no-immigration-purpose"],
        "policy": POLICY,
        "text": None,
        "releases": None,
        "subjects": None,
        "released": [],
        "due": None,
        "certificate": None,
    },
}


def entry(kind: str) -> dict[str, Any]:
    return {"v": 1, "kind": kind, "time": TIME, **EXAMPLES[kind]}


def test_there_is_an_example_of_every_entry_kind() -> None:
    assert set(EXAMPLES) == set(ENTRY_KINDS)


@pytest.mark.parametrize("kind", ENTRY_KINDS)
def test_each_example_has_its_kinds_exact_shape(kind: str) -> None:
    jsonschema_rs.Draft202012Validator(kind_schema(kind)).validate(entry(kind))


@pytest.mark.parametrize("kind", ENTRY_KINDS)
def test_describe_says_every_kind_in_plain_words(kind: str) -> None:
    text = describe_entry(entry(kind))
    assert text and text[0].isupper() and text.endswith(".")
    assert "could not be read" not in text and "unknown kind" not in text
    assert not HEX64.search(text), "no commitment, root, certificate or policy hash"
    assert COMMITMENT not in text and "{" not in text and "None" not in text
    if "request" in EXAMPLES[kind]:
        assert RID in text


def test_describe_uses_labels_not_ids() -> None:
    text = describe_entry(entry("request"))
    assert "from met-police (a police force)" in text
    assert "to st-marys-primary (a school or education body)" in text
    assert "for preventing or detecting crime" in text
    assert "name and address about 3 people" in text
    assert "2 are children. 1 is a victim or witness of crime." in text
    assert "Legal basis: Crime and taxation exemption (also court order)." in text
    assert "Offence: Immigration Act 1971, section 24A(1)(b)." in text
    assert "pass the data on to an immigration enforcement body" in text
    decided = describe_entry(entry("decision"))
    assert "allowed name" in decided and "refused nationality" in decided
    assert "Police: details of a suspect; Nationality never shared" in decided
    assert "St Mary's Primary School (st-marys-primary)" in describe_entry(entry("organisation"))


def test_describe_never_invents_an_offence_for_an_unlisted_act() -> None:
    text = describe_entry({**entry("request"), "offence": "unlisted"})
    assert "not on carewall's list" in text and "unlisted" not in text


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"kind": "mystery", "v": 1},
        {"kind": ["request"]},
        {"kind": None},
        {"kind": "__class__"},
    ],
)
def test_an_unknown_kind_is_said_as_such(bad: dict[str, Any]) -> None:
    assert describe_entry(bad) == "An entry of an unknown kind."


@pytest.mark.parametrize("kind", ENTRY_KINDS)
def test_a_malformed_entry_never_raises(kind: str) -> None:
    assert "could not be read" in describe_entry({"v": 1, "kind": kind})
    broken = {k: (None if k not in ("v", "kind") else v) for k, v in entry(kind).items()}
    assert describe_entry(broken)


def test_describe_reads_a_whole_real_log(tmp_path: Path) -> None:
    """A synthetic year through the real service: every entry is said, none leaks a hash."""
    svc = Service.init(
        f"sqlite:///{tmp_path / 'c.db'}", None, "test.carewall.example/log", tmp_path / "k"
    )
    try:
        fill_year(svc, scale=0.03)
        svc.publish_pending()
        log = [json.loads(b) for b in svc.ledger.entries(0, svc.ledger.size())]
    finally:
        svc.close()
    assert {e["kind"] for e in log} >= {"policy", "request", "decision", "review", "release"}
    for e in log:
        text = describe_entry(e)
        assert "could not be read" not in text and "unknown kind" not in text, e
        assert not HEX64.search(text), text
        if e["kind"] == "notice":
            assert e["subject"] not in text
            assert not any(h in text for h in e["subject_path"])
