"""``carewall ledger append`` checks its input in a forked child while it writes.

The CLI tests in test_ledger_cli.py drive the command in-process (their input has no file
descriptor, so it is checked in-process); these run it as a real process reading a real
standard input or file, where the child checks, and hold the two paths to the same
results: the same batches, the same refusals, and a clear error if the child dies. What
forks runs in a fresh interpreter (fork_probe.py): a test worker may hold threads.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carewall.cli import append_input
from carewall.cli.append_input import Batch, checked_batches
from carewall.errors import CarewallError

GOOD = b'{"kind":"notice","v":1}\n'
CLI = [sys.executable, "-c", "from carewall.cli import main; main()"]


PROBE = Path(__file__).with_name("fork_probe.py")


def _probe(*args: str) -> Any:
    """What fork_probe.py prints, run alone (a forked child needs a process without threads)."""
    done = subprocess.run(
        [sys.executable, str(PROBE), *args], capture_output=True, check=False, timeout=600
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return json.loads(done.stdout)


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


def test_an_entries_file_is_read_by_the_child_too(tmp_path: Path) -> None:
    db, source = tmp_path / "log.db", tmp_path / "entries.jsonl"
    source.write_bytes(GOOD * 40)
    done = _cli("ledger", "append", "--db", str(db), "--batch", "16", str(source))
    assert done.returncode == 0, done.stderr
    assert _size(db) == 40


def _all(batches: Iterator[Batch]) -> list[Batch] | tuple[str, str | None, str]:
    try:
        return list(batches)
    except CarewallError as e:
        return (e.message, e.field, type(e).__name__)


@pytest.mark.parametrize(
    "text",
    [
        GOOD * 5,
        GOOD * 2 + b"\n\n" + GOOD,
        GOOD + b"not json\n" + GOOD,
        GOOD * 3 + b'{"kind":"notice","v":2}\n',
        GOOD + b'{"kind":"notice","v":1,"a":1,"a":2}\n',
        GOOD + b'{"kind":"notice","v":1,"n":9007199254740993}\n',
        GOOD + b'{"kind":"notice","v":1,"s":"' + b"x" * 70_000 + b'"}\n',
        b"\xff\xfe\n",
        GOOD * 100_000,
    ],
    ids=[
        "good",
        "blank-lines",
        "not-json",
        "wrong-v",
        "duplicate",
        "inexact",
        "oversize",
        "not-utf8",
        "more-than-a-pipe-holds",
    ],
)
def test_the_child_gives_what_checking_here_gives(tmp_path: Path, text: bytes) -> None:
    source = tmp_path / "entries.jsonl"
    source.write_bytes(text)
    got = _probe("append", str(source), "2048")
    assert got["forked"], "checked here, not by a child"
    assert got["same"]


def test_a_child_that_dies_is_an_error_after_what_it_sent(tmp_path: Path) -> None:
    source = tmp_path / "entries.jsonl"
    source.write_bytes(GOOD * 3)
    got = _probe("dies", str(source))
    assert got["first"] == [2, ["first"]]
    assert got["error"] is not None and "stopped before the end" in got["error"]


def test_no_fork_beside_another_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_child(fd: int, size: int) -> Iterator[Batch]:
        raise AssertionError("forked beside another thread")

    monkeypatch.setattr(append_input, "_from_child", no_child)
    source = tmp_path / "entries.jsonl"
    source.write_bytes(GOOD * 3)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        with source.open("rb") as f:
            assert _all(checked_batches(f, 2)) == [(3, [GOOD.rstrip()] * 2), (4, [GOOD.rstrip()])]
    finally:
        release.set()
        other.join()


def test_bytes_without_a_descriptor_are_checked_here(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_child(fd: int, size: int) -> Iterator[Batch]:
        raise AssertionError("forked for an in-memory source")

    monkeypatch.setattr(append_input, "_from_child", no_child)
    assert _all(checked_batches(io.BytesIO(GOOD), 2)) == [(2, [GOOD.rstrip()])]
