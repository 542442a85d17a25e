"""The audit's public surface, its state file and its statement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import carewall.audit
from carewall.audit import (
    STATE_VERSION,
    AuditReport,
    AuditState,
    Finding,
    Totals,
    load_state,
    save_state,
)
from carewall.errors import InputError


def test_the_public_surface_is_pinned() -> None:
    assert sorted(carewall.audit.__all__) == [
        "AuditReport",
        "AuditState",
        "FetchError",
        "Finding",
        "STATE_VERSION",
        "Totals",
        "audit_log",
        "load_state",
        "save_state",
    ]


def state() -> AuditState:
    return AuditState(
        origin="carewall.test/log",
        size=3,
        root=b"\x01" * 32,
        frontier=[b"\x02" * 32, b"\x03" * 32],
        checkpoint="carewall.test/log\n3\nAQ==\n",
        findings=[Finding(2, "release", "breaks the pledge", ("pledge/never-nationality",))],
        replay={"register": {}, "policy": {}, "requests": {}, "totals": Totals().to_json()},
    )


def test_the_state_survives_a_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert load_state(path) is None
    save_state(path, state())
    again = load_state(path)
    assert again == state()
    assert json.loads(path.read_text())["version"] == STATE_VERSION == 3
    assert not list(tmp_path.glob(".audit-*"))  # no temporary file left behind


def test_an_older_state_file_is_refused_with_a_way_forward(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    old = state().to_json() | {"version": 1}
    path.write_text(json.dumps(old))
    with pytest.raises(InputError) as e:
        load_state(path)
    assert e.value.field == "--state"
    assert "version 1" in e.value.message and "kept less of its replay" in e.value.message
    assert e.value.fix is not None and "new --state path" in e.value.fix


@pytest.mark.parametrize(
    "change",
    [
        {"version": 4},
        {"root": "not base64!"},
        {"findings": [{"index": "x"}]},
        {"replay": ["not", "an", "object"]},
        {"size": None},
    ],
)
def test_a_malformed_state_file_is_refused(tmp_path: Path, change: dict[str, object]) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state().to_json() | change))
    with pytest.raises(InputError) as e:
        load_state(path)
    assert e.value.field == "--state"


def report(**kw: object) -> AuditReport:
    r = AuditReport("carewall.test/log", 40, b"\x00" * 32, previous_size=0, checked=40)
    r.totals = Totals(entries=40, requests=7, decisions_replayed=7, decisions_matched=7, releases=5)
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def test_the_statement_of_a_clean_log() -> None:
    assert report().statement() == (
        "Checked 40 entries of log carewall.test/log up to the signed checkpoint of size 40 "
        "(root AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=): 7 requests decided again with "
        "the logged policy and all matched; 5 releases, 0 to immigration enforcement."
    )


def test_the_statement_of_a_failed_log_counts_the_findings() -> None:
    failed = report(findings=[Finding(3, "release", "releases data to an immigration body")])
    failed.totals.releases_to_immigration = 1
    failed.totals.decisions_matched = 6
    text = failed.statement()
    assert "FAILED with 1 finding." in text
    assert "7 requests, 6 of them decided again with the logged policy and matched" in text
    assert text.endswith("5 releases, 1 to immigration enforcement.")
    assert not failed.ok


def test_the_statement_of_an_incremental_run_covers_the_whole_log() -> None:
    text = report(previous_size=30, checked=10).statement()
    assert text.startswith(
        "Checked entries 30 to 39 of log carewall.test/log (entries 0 to 29 in earlier audits) "
        "up to the signed checkpoint of size 40"
    )
    assert "Over the whole log: 7 requests decided again" in text


def test_a_finding_is_one_line_that_starts_with_its_index() -> None:
    f = Finding(12, "release", "breaks the pledge", ("pledge/a", "pledge/b"))
    assert f.line() == "entry 12 (release): breaks the pledge [pledge/a, pledge/b]"
    assert Finding.from_json(f.to_json()) == f
