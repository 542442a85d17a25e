"""The audit's public surface, its state file and its statement."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import carewall.audit
from carewall.audit import (
    STATE_VERSION,
    AuditReport,
    AuditState,
    Finding,
    Totals,
    default_key_path,
    load_state,
    save_state,
    state_key,
)
from carewall.audit.state import state_bytes
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
        "default_key_path",
        "load_state",
        "save_state",
        "state_key",
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


KEY = bytes(range(32))


def sealed(body: dict[str, Any], key: bytes = KEY) -> dict[str, Any]:
    """``body`` with the seal the file format documents: HMAC-SHA256 over its sorted,
    compact JSON without the seal."""
    data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return body | {"seal": hmac.new(key, data, hashlib.sha256).hexdigest()}


def test_the_state_survives_a_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert load_state(path, KEY) is None
    save_state(path, state(), KEY)
    again = load_state(path, KEY)
    assert again == state()
    saved = json.loads(path.read_text())
    assert saved["version"] == STATE_VERSION == 4
    assert saved == sealed(state().to_json())
    assert not list(tmp_path.glob(".audit-*"))  # no temporary file left behind


@pytest.mark.parametrize("version", [1, 3])
def test_an_older_state_file_is_refused_with_a_way_forward(tmp_path: Path, version: int) -> None:
    path = tmp_path / "state.json"
    old = state().to_json() | {"version": version}
    path.write_text(json.dumps(old))
    with pytest.raises(InputError) as e:
        load_state(path, KEY)
    assert e.value.field == "--state"
    assert f"version {version}" in e.value.message
    assert "kept less of its replay" in e.value.message
    assert e.value.fix is not None and "new --state path" in e.value.fix


def _erase_findings(body: dict[str, Any]) -> None:
    body["findings"] = []


def _unseal(body: dict[str, Any]) -> None:
    del body["seal"]


def _reseal_with_another_key(body: dict[str, Any]) -> None:
    body["findings"] = []
    body["seal"] = sealed({k: v for k, v in body.items() if k != "seal"}, b"\x07" * 32)["seal"]


def _blank_seal(body: dict[str, Any]) -> None:
    body["seal"] = ""


def _seal_as_number(body: dict[str, Any]) -> None:
    body["seal"] = 0


@pytest.mark.parametrize(
    "tamper",
    [_erase_findings, _unseal, _reseal_with_another_key, _blank_seal, _seal_as_number],
)
def test_a_state_changed_after_it_was_sealed_is_refused(tmp_path: Path, tamper: Any) -> None:
    path = tmp_path / "state.json"
    save_state(path, state(), KEY)
    body = json.loads(path.read_text())
    tamper(body)
    path.write_text(json.dumps(body))
    with pytest.raises(InputError) as e:
        load_state(path, KEY)
    assert e.value.field == "--state"
    assert "seal" in e.value.message
    assert e.value.fix is not None and "--state-key" in e.value.fix


def test_the_seal_is_over_the_content_not_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(path, state(), KEY)
    body = json.loads(path.read_text())
    path.write_text(json.dumps(dict(reversed(list(body.items()))), indent=3))
    assert load_state(path, KEY) == state()


def test_a_state_read_with_another_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(path, state(), KEY)
    with pytest.raises(InputError, match="seal"):
        load_state(path, b"\x07" * 32)


def test_the_key_is_made_once_private_and_then_kept(tmp_path: Path) -> None:
    path = tmp_path / "config" / "carewall" / "audit-state.key"
    key, made = state_key(path)
    assert made and len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert state_key(path) == (key, False)
    other, _ = state_key(tmp_path / "another.key")
    assert other != key


def test_a_key_others_can_read_or_write_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit-state.key"
    state_key(path)
    for mode in (0o640, 0o604, 0o620):
        os.chmod(path, mode)
        with pytest.raises(InputError) as e:
            state_key(path)
        assert e.value.field == "--state-key"
        assert e.value.fix is not None and "chmod 600" in e.value.fix


@pytest.mark.parametrize("text", ["", "not hex", "ab" * 16, "ab" * 33])
def test_a_key_file_without_a_key_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "audit-state.key"
    path.write_text(text)
    os.chmod(path, 0o600)
    with pytest.raises(InputError) as e:
        state_key(path)
    assert e.value.field == "--state-key" and "64 hex digits" in e.value.message


def test_the_default_key_lives_in_the_auditors_config_not_beside_the_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_key_path() == tmp_path / "xdg" / "carewall" / "audit-state.key"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_key_path() == tmp_path / "home" / ".config" / "carewall" / "audit-state.key"


@pytest.mark.parametrize(
    "change",
    [
        {"version": 5},
        {"version": "4"},
        {"root": "not base64!"},
        {"findings": [{"index": "x"}]},
        {"replay": ["not", "an", "object"]},
        {"size": None},
    ],
)
def test_a_malformed_state_file_is_refused(tmp_path: Path, change: dict[str, object]) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(sealed(state().to_json() | change)))
    with pytest.raises(InputError) as e:
        load_state(path, KEY)
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


_TEXT = st.text(alphabet=st.characters(codec="utf-8"))
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.text(alphabet=st.characters(codec="utf-8")),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(codec="utf-8"), max_size=6), inner, max_size=4
        )
    ),
    max_leaves=30,
)


@given(st.dictionaries(st.text(max_size=8), _JSON, max_size=6))
def test_a_state_is_sealed_over_exactly_the_bytes_json_dumps_writes(body: dict[str, Any]) -> None:
    # The fast form (msgspec) must never change what a seal covers: a state written by
    # one release is read by the next.
    reference = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert state_bytes(body) == reference


def test_ascii_controls_and_big_numbers_are_written_as_json_dumps_does() -> None:
    body = {"b": '\x00\x1f\x7f\t\n"\\/', "a": 2**64 + 1, "é": "ü", "c": [None, True, -0]}
    assert state_bytes(body) == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
