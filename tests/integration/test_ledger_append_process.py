"""``carewall ledger append`` as a real process, reading a real standard input or a file.

The CLI tests in test_ledger_cli.py drive the command in-process (click's runner hands it
bytes in memory); these run the installed command on a real descriptor, batch by batch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GOOD = b'{"kind":"notice","v":1}\n'
CLI = [sys.executable, "-c", "from carewall.cli import main; main()"]


def _cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, check=False)


def _size(db: Path) -> int:
    done = _cli("ledger", "checkpoint", "--db", str(db))
    assert done.returncode == 0, done.stderr
    return int(done.stdout.decode().splitlines()[1])


def test_a_real_stdin_is_checked_and_appended_batch_by_batch(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    lines = GOOD * 7 + b'{"v": 1, "kind": "notice", "n": 2}\n'  # the last one not canonical
    done = _cli("ledger", "append", "--db", str(db), "--batch", "3", "-", stdin=lines)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines()[1] == "8"
    verify = _cli("ledger", "verify", "--db", str(db))
    assert verify.returncode == 0, verify.stdout


def test_a_bad_line_on_a_real_stdin_keeps_the_batches_before_it(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    text = GOOD * 5 + b'{"kind":"spaceship","v":1}\n' + GOOD * 3
    done = _cli("ledger", "append", "--db", str(db), "--batch", "2", "-", stdin=text)
    err = done.stderr.decode()
    assert done.returncode == 2
    assert "Traceback" not in err
    assert "line 6" in err and "unknown entry kind" in err
    assert "append again from line 5" in err
    assert _size(db) == 4  # two whole batches, committed and signed


def test_an_entries_file_is_appended_batch_by_batch(tmp_path: Path) -> None:
    db, source = tmp_path / "log.db", tmp_path / "entries.jsonl"
    source.write_bytes(GOOD * 40)
    done = _cli("ledger", "append", "--db", str(db), "--batch", "16", str(source))
    assert done.returncode == 0, done.stderr
    assert _size(db) == 40
