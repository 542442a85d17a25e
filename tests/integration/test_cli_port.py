"""``carewall serve`` and ``carewall demo`` on a port that is taken: one line, exit 2."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Cli, run

from carewall.cli.port import check_port, listen_error
from carewall.errors import ConflictError

_IN_USE = re.compile(
    r"error: port (\d+) on 127\.0\.0\.1 is in use \(choose another with --port(, e\.g\. "
    r"--port (\d+)( or make run PORT=(\d+))?)?\)"
)


@pytest.fixture
def taken() -> Iterator[int]:
    """A port on 127.0.0.1 that a listening socket of this test holds."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def _in_use(stderr: str, port: int) -> re.Match[str]:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    m = _IN_USE.fullmatch(lines[0])
    assert m is not None, lines[0]
    assert int(m.group(1)) == port
    return m


def test_serve_on_a_taken_port(tmp_path: Path, taken: int) -> None:
    cli = Cli.init(tmp_path)
    res = run(["serve", *cli.signing, "--port", str(taken)])
    assert res.exit_code == 2 and res.stdout == ""
    m = _in_use(res.stderr, taken)
    assert m.group(4) is None  # `make run` runs the demo, so serve does not suggest it
    if m.group(3):  # the port it suggests was free when it looked
        assert int(m.group(3)) != taken


def test_demo_on_a_taken_port_says_so_before_building(tmp_path: Path, taken: int) -> None:
    db = tmp_path / "demo.db"
    res = run(["demo", "--db", str(db), "--scale", "0.01", "--port", str(taken)])
    assert res.exit_code == 2 and res.stdout == ""
    m = _in_use(res.stderr, taken)
    if m.group(3):
        assert m.group(5) == m.group(3)  # the same port, spelt for `make run PORT=…`
    assert not db.exists()  # refused before a year of requests was built


def test_the_real_command_gives_one_line_too(tmp_path: Path, taken: int) -> None:
    """The installed entry point, in its own process: no uvicorn traceback."""
    cli = Cli.init(tmp_path)
    carewall = Path(sys.executable).with_name("carewall")  # the venv's console script
    proc = subprocess.run(
        [str(carewall), "serve", *cli.signing, "--port", str(taken)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    _in_use(proc.stderr, taken)
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("port", ["0", "-1", "65536", "http"])
@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_port_out_of_range_is_a_usage_error(tmp_path: Path, command: str, port: str) -> None:
    res = run([command, "--db", str(tmp_path / "x.db"), "--port", port])
    assert res.exit_code == 2 and "--port" in res.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_host_that_is_not_this_machine(tmp_path: Path) -> None:
    cli = Cli.init(tmp_path)
    # 203.0.113.0/24 is TEST-NET-3 (RFC 5737): never an address of this machine
    res = run(["serve", *cli.signing, "--host", "203.0.113.9", "--port", "8000"])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: --host: ") and len(res.stderr.splitlines()) == 1


def test_check_port_itself(taken: int) -> None:
    assert listen_error("127.0.0.1", taken) is not None
    with pytest.raises(ConflictError, match=f"port {taken} on 127.0.0.1 is in use"):
        check_port("127.0.0.1", taken)
    # a port no one holds passes (bound and released at once, so it may be taken again)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = int(s.getsockname()[1])
    check_port("127.0.0.1", free)
