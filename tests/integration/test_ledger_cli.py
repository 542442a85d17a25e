"""``carewall ledger …`` through click's runner, on a SQLite file."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from carewall.cli import main
from carewall.ledger import Ledger
from carewall.ledger.checkpoint import open_checkpoint
from carewall.ledger.merkle import verify_consistency, verify_inclusion
from carewall.ledger.note import Verifier
from carewall.storage import open_store

LINES = [{"v": 1, "kind": "policy", "n": i, "z": "last", "a": "first"} for i in range(5)]


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "log.db")


@pytest.fixture
def filled(db: str, tmp_path: Path) -> str:
    src = tmp_path / "entries.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in LINES))
    code, _, err = run("ledger", "append", "--db", db, "--origin", "cli.test/log", str(src))
    assert code == 0, err
    return db


def test_append_creates_the_ledger_and_prints_a_signed_checkpoint(filled: str) -> None:
    key_file = Path(filled + ".key")
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    code, vkey, _ = run("ledger", "key", "--db", filled)
    assert code == 0
    code, note, _ = run("ledger", "checkpoint", "--db", filled)
    assert code == 0
    cp = open_checkpoint(note, [Verifier.from_vkey(vkey.strip())])
    assert (cp.origin, cp.size) == ("cli.test/log", 5)


def test_append_from_stdin_canonicalises_and_grows_the_checkpoint(filled: str) -> None:
    code, note, _ = run(
        "ledger", "append", "--db", filled, "-", input='{"kind":"notice","v":1}\n\n'
    )
    assert code == 0
    assert note.splitlines()[1] == "6"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"v":1,"kind":"policy"}\n{"v":1,"kind":"nope"}\n', "line 2.kind"),
        ('{"v":1,"kind":"policy"}\n\n{"v":1,"kind":"policy"\n', "line 3"),
        ("[1]\n", "line 1"),
        ('{"v":1,"kind":"policy","v":1}\n', "line 1"),
    ],
)
def test_a_bad_line_appends_nothing(filled: str, text: str, where: str) -> None:
    code, _, err = run("ledger", "append", "--db", filled, "-", input=text)
    assert code == 2
    assert f"error: {where}" in err
    assert "Traceback" not in err
    _, note, _ = run("ledger", "checkpoint", "--db", filled)
    assert note.splitlines()[1] == "5"


def test_proofs_are_json_that_verifies(filled: str) -> None:
    code, out, _ = run("ledger", "proof", "--db", filled, "--index", "3")
    assert code == 0
    doc = json.loads(out)
    entry = json.dumps(LINES[3], sort_keys=True, separators=(",", ":")).encode()
    leaf = hashlib.sha256(b"\x00" + entry).digest()
    root = base64.b64decode(doc["root"])
    proof = [base64.b64decode(p) for p in doc["proof"]]
    verify_inclusion(3, 5, leaf, proof, root)
    code, out, _ = run("ledger", "proof", "--db", filled, "--from", "2", "--size", "5")
    assert code == 0
    c = json.loads(out)
    verify_consistency(
        2,
        5,
        base64.b64decode(c["root_from"]),
        base64.b64decode(c["root"]),
        [base64.b64decode(p) for p in c["proof"]],
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--index", "5"],
        ["--index", "0", "--size", "6"],
        ["--from", "4", "--size", "3"],
        ["--from", "2"],
        [],
        ["--index", "1", "--from", "1", "--size", "2"],
    ],
)
def test_bad_proof_parameters_exit_2(filled: str, args: list[str]) -> None:
    code, _, err = run("ledger", "proof", "--db", filled, *args)
    assert code == 2
    assert err.startswith("error:") or "Usage" in err


def test_verify_reports_ok_with_a_rate(filled: str) -> None:
    code, out, _ = run("ledger", "verify", "--db", filled)
    assert code == 0
    assert out.startswith("ok: 5 entries")
    assert "entries/s" in out


def test_missing_database_is_an_input_error(tmp_path: Path) -> None:
    code, _, err = run("ledger", "verify", "--db", str(tmp_path / "absent.db"))
    assert code == 2
    assert "no database" in err
    assert not (tmp_path / "absent.db").exists()


def test_a_loose_key_file_is_refused(filled: str) -> None:
    Path(filled + ".key").chmod(0o644)
    code, _, err = run("ledger", "append", "--db", filled, "-", input='{"v":1,"kind":"policy"}\n')
    assert code == 2
    assert "chmod 600" in err


def test_env_selects_database_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREWALL_DB", str(tmp_path / "env.db"))
    monkeypatch.setenv("CAREWALL_KEY", str(tmp_path / "env.key"))
    code, _, err = run("ledger", "append", "-", input='{"v":1,"kind":"policy"}\n')
    assert code == 0, err
    assert (tmp_path / "env.key").exists()
    code, out, _ = run("ledger", "verify")
    assert (code, out.split(",")[0]) == (0, "ok: 1 entries")


def test_batches_commit_in_order_and_a_bad_line_keeps_the_batches_before_it(
    filled: str,
) -> None:
    good = '{"kind":"notice","v":1}\n'
    text = good * 5 + '{"kind":"notice","v":1,"n":1.5e999}\n' + good
    code, _, err = run("ledger", "append", "--db", filled, "--batch", "2", "-", input=text)
    assert code == 2
    assert "error: line 6" in err
    assert "append again from line 5" in err  # lines 1-4 (two batches) are in, signed
    _, note, _ = run("ledger", "checkpoint", "--db", filled)
    assert note.splitlines()[1] == "9"
    code, note, _ = run("ledger", "append", "--db", filled, "--batch", "2", "-", input=good * 5)
    assert code == 0
    assert note.splitlines()[1] == "14"
    code, out, _ = run("ledger", "verify", "--db", filled)
    assert code == 0, out


def test_canonical_and_other_lines_are_stored_canonically(filled: str) -> None:
    lines = ['{"kind":"notice","v":1}', '{"v": 1, "kind": "notice", "é": "\\u00e9"}']
    code, _, err = run("ledger", "append", "--db", filled, "-", input="\n".join(lines) + "\n")
    assert code == 0, err
    code, out, _ = run("ledger", "verify", "--db", filled)
    assert code == 0, out
    store = open_store(filled)
    try:
        stored = Ledger.open(store).entries(5, 7)
    finally:
        store.dispose()
    assert stored == [b'{"kind":"notice","v":1}', '{"kind":"notice","v":1,"é":"é"}'.encode()]
