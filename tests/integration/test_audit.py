"""``carewall audit`` against a real uvicorn server on 127.0.0.1 serving the /log routes.

The logs are coherent v2 logs written as a carewall instance would (``audit_support``);
these tests cover the outsider's checks on the log itself: signatures, forks, inclusion,
incremental runs and their state file. The replay's findings are in test_audit_forgeries.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from audit_serving import Server, audit, findings, make_log, running, statement
from audit_support import ORIGIN, S, full_log
from click.testing import CliRunner, Result

from carewall.cli import main
from carewall.ledger.canonical import canonical
from carewall.ledger.note import Signer


@pytest.fixture
def server() -> Iterator[Server]:
    with running(Server()) as s:
        yield s


def assert_clean_failure(result: Result, code: int, words: str) -> None:
    assert result.exit_code == code, result.output
    assert words in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_honest_log_passes_twice_incrementally(tmp_path: Path, server: Server) -> None:
    b = full_log()
    first_size = len(b.entries)
    log = make_log(tmp_path, "a", tmp_path / "a.key", b.entries)
    server.serve(log)
    state = tmp_path / "state.json"
    first = audit(server, log.vkey, state)
    assert first.exit_code == 0, first.output
    assert statement(first).startswith(f"Checked {first_size} entries of log {ORIGIN} ")
    assert "8 requests decided again with the logged policy and all matched" in first.stdout
    assert "5 releases, 0 to immigration enforcement." in statement(first)
    saved = json.loads(state.read_text())
    assert (saved["origin"], saved["size"], saved["version"]) == (ORIGIN, first_size, 4)

    # More than a tile of new entries, some about requests the first run saw: the replay
    # continues from the state file.
    for n in range(140):
        b.request(
            "met-police", "whittington-health", "prevention_detection_of_crime",
            "dpa2018_sch2_p1_para2_crime", ["name"], [S()], offence=f"theft_act_1968_s{n + 1}",
        )  # fmt: skip
    transfer = next(r for r, q in b.requests.items() if q.doc["purpose"] == "pupil_transfer")
    b.appeal(transfer, "subject")  # about a release the first run replayed
    new = b.entries[first_size:]
    log.add(new)
    second = audit(server, log.vkey, state)
    assert second.exit_code == 0, second.output
    size = first_size + len(new)
    assert statement(second).startswith(
        f"Checked entries {first_size} to {size - 1} of log {ORIGIN} (entries 0 to "
        f"{first_size - 1} in earlier audits) up to the signed checkpoint of size {size} "
    )
    assert "148 requests decided again" in statement(second)
    assert json.loads(state.read_text())["size"] == size

    third = audit(server, log.vkey, state)  # nothing new: same size, same root
    assert third.exit_code == 0, third.output

    # A state file whose frontier no longer matches its root was altered: refuse to use it.
    saved = json.loads(state.read_text())
    saved["frontier"][0] = saved["root"] if saved["frontier"][0] != saved["root"] else ""
    state.write_text(json.dumps(saved))
    assert_clean_failure(audit(server, log.vkey, state), 2, "--state")


def test_a_state_file_from_before_the_replay_is_refused(tmp_path: Path, server: Server) -> None:
    log = make_log(tmp_path, "a", tmp_path / "a.key", full_log().entries)
    server.serve(log)
    state = tmp_path / "state.json"
    assert audit(server, log.vkey, state).exit_code == 0
    saved = json.loads(state.read_text())
    saved["version"] = 1
    state.write_text(json.dumps(saved))
    result = audit(server, log.vkey, state)
    assert_clean_failure(result, 2, "version 1, written by an older `carewall audit`")
    assert "new --state path" in result.stderr


def test_a_state_file_changed_by_someone_without_the_key_is_refused(
    tmp_path: Path, server: Server
) -> None:
    """The state is sealed with the auditor's own key, made on first use where --state-key
    says: findings erased, or a state sealed with another key, are refused (exit 2) and the
    state is left as it was; --state-key without --state is a usage error."""
    b = full_log()
    log = make_log(tmp_path, "a", tmp_path / "a.key", b.entries)
    server.serve(log)
    state, key = tmp_path / "state.json", tmp_path / "private" / "audit-state.key"

    def run(key_path: Path) -> Result:
        args = ["audit", server.url, "--key", log.vkey, "--no-statistics"]
        return CliRunner().invoke(
            main, [*args, "--state", str(state), "--state-key", str(key_path)]
        )

    first = run(key)
    assert first.exit_code == 0, first.output
    assert f"made a key to seal the audit state: {key}" in first.stderr
    assert key.stat().st_mode & 0o777 == 0o600
    again = run(key)
    assert again.exit_code == 0 and "made a key" not in again.stderr
    saved = json.loads(state.read_text())
    saved["findings"] = [{"index": 3, "kind": "release", "message": "x", "rules": []}]
    state.write_text(json.dumps(saved))
    assert_clean_failure(run(key), 2, "does not carry this auditor's seal")
    assert json.loads(state.read_text()) == saved  # nothing rewritten
    state.unlink()
    assert run(key).exit_code == 0
    other = run(tmp_path / "other.key")
    assert other.exit_code == 2 and "seal" in other.stderr
    alone = CliRunner().invoke(
        main, ["audit", server.url, "--key", log.vkey, "--state-key", str(key)]
    )
    assert alone.exit_code == 2 and "--state-key" in alone.stderr


def test_rewritten_history_with_the_same_key_fails(tmp_path: Path, server: Server) -> None:
    key = tmp_path / "a.key"
    b = full_log()
    entries = b.entries
    cut = b.groups.index(b.groups[40])  # a checkpoint falls between transactions
    honest = make_log(tmp_path, "a", key, entries[:cut])
    server.serve(honest)
    state = tmp_path / "state.json"
    assert audit(server, honest.vkey, state).exit_code == 0
    before = state.read_text()

    rewritten = [dict(e) for e in entries]
    rewritten[7] = {**rewritten[7], "time": "2026-01-01T00:00:00Z"}
    forked = make_log(tmp_path, "b", key, rewritten)
    assert forked.vkey == honest.vkey
    server.serve(forked)
    result = audit(server, honest.vkey, state)
    assert_clean_failure(result, 1, "fork")
    assert "FAILED the audit before it could be replayed" in statement(result)
    assert state.read_text() == before  # the evidence is kept


def test_same_size_different_root_is_a_fork(tmp_path: Path, server: Server) -> None:
    key = tmp_path / "a.key"
    entries = full_log().entries
    honest = make_log(tmp_path, "a", key, entries)
    server.serve(honest)
    state = tmp_path / "state.json"
    assert audit(server, honest.vkey, state).exit_code == 0
    other = [*entries[:-1], {**entries[-1], "time": "2026-12-31T00:00:00Z"}]
    forked = make_log(tmp_path, "b", key, other)
    server.serve(forked)
    assert_clean_failure(audit(server, honest.vkey, state), 1, "fork")


def test_a_log_that_shrinks_fails(tmp_path: Path, server: Server) -> None:
    key = tmp_path / "a.key"
    entries = full_log().entries
    honest = make_log(tmp_path, "a", key, entries)
    server.serve(honest)
    state = tmp_path / "state.json"
    assert audit(server, honest.vkey, state).exit_code == 0
    shorter = make_log(tmp_path, "b", key, entries[:30])
    server.serve(shorter)
    result = audit(server, honest.vkey, state)
    assert_clean_failure(result, 1, f"shrank from {len(entries)} to 30")
    assert "FAILED the audit before it could be replayed" in statement(result)


def test_an_entry_modified_after_signing_fails(tmp_path: Path, server: Server) -> None:
    entries = full_log().entries
    log = make_log(tmp_path, "a", tmp_path / "a.key", entries)
    altered = canonical({**entries[7], "name": "Someone Else"})
    with log.store.write() as conn:
        conn.execute(sa.text("UPDATE ledger_entries SET data = :d WHERE idx = 7"), {"d": altered})
    server.serve(log)
    result = audit(server, log.vkey)
    assert_clean_failure(result, 1, "first differing entry: 7")


def test_a_failure_is_never_forgotten(tmp_path: Path, server: Server) -> None:
    b = full_log()
    release = next(i for i, e in enumerate(b.entries) if e["kind"] == "release")
    entries = [dict(e) for e in b.entries]
    entries[release] = {
        **entries[release],
        "recipient": "home-office-ie",
        "recipient_function": "immigration_enforcement",
    }
    log = make_log(tmp_path, "a", tmp_path / "a.key", entries)
    server.serve(log)
    state = tmp_path / "state.json"
    result = audit(server, log.vkey, state)
    assert result.exit_code == 1
    assert any(
        ln.startswith(f"entry {release} (release): releases data to an immigration")
        for ln in findings(result)
    )
    assert "1 to immigration enforcement" in statement(result)
    assert f"the first at entry {release}" in result.stderr

    # An incremental run still reports it: a failure in the log is never forgotten.
    b.deletion("st-marys-primary")
    log.add(b.entries[-1:])
    again = audit(server, log.vkey, state)
    assert again.exit_code == 1
    assert "flagged in earlier audits" in again.stdout
    assert "FAILED" in statement(again)
    assert "1 to immigration enforcement" in statement(again)


def test_a_non_canonical_entry_fails(tmp_path: Path, server: Server) -> None:
    entries: list[dict[str, object] | bytes] = list(full_log().entries)
    entries.append(json.dumps(entries[-1]).encode())  # valid JSON, not RFC 8785
    log = make_log(tmp_path, "a", tmp_path / "a.key", entries)
    server.serve(log)
    result = audit(server, log.vkey)
    assert result.exit_code == 1, result.output
    n = len(entries) - 1
    assert f"entry {n} (?): is not in RFC 8785 canonical form" in findings(result)
    assert "Traceback" not in result.output


def test_a_wrong_key_fails(tmp_path: Path, server: Server) -> None:
    log = make_log(tmp_path, "a", tmp_path / "a.key", full_log().entries[:3])
    server.serve(log)
    impostor = Signer.generate(ORIGIN).vkey()
    result = audit(server, impostor)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "FAILED the audit" in statement(result)
    other_name = Signer.generate("someone.else/log").vkey()
    assert audit(server, other_name).exit_code == 1


def test_usage_and_network_errors_exit_2(tmp_path: Path) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    vkey = Signer.generate(ORIGIN).vkey()
    url = f"http://127.0.0.1:{port}"
    down = CliRunner().invoke(main, ["audit", url, "--key", vkey])
    assert_clean_failure(down, 2, "could not fetch")
    assert statement(down).startswith(f"The log at {url} was not audited")
    bad_key = CliRunner().invoke(main, ["audit", url, "--key", "nope"])
    assert_clean_failure(bad_key, 2, "--key")
    state = tmp_path / "state.json"
    state.write_text("{not json")
    bad_state = CliRunner().invoke(main, ["audit", url, "--key", vkey, "--state", str(state)])
    assert_clean_failure(bad_state, 2, "--state")
