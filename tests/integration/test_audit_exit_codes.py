"""``carewall audit`` exit codes as contract §7 says: 1 on any failure of the log, 2 when
it could not be read (or the command was used wrongly), 0 when it checked out.

A log whose signed checkpoint covers an entry it then does not serve (an entry bundle
answered 404, or short of entries) has failed: it signed for something it cannot show.
So has one that signs a larger tree but will not prove it consistent with the one seen
before. Those are exit 1, not the network's exit 2. A server in trouble (503) or not
there at all is exit 2: nothing was judged, try again.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from audit_serving import MEM_SIGNER, MemoryLog, serving
from audit_support import full_log
from click.testing import CliRunner, Result
from fastapi import FastAPI, Request, Response

from carewall.cli import main
from carewall.ledger.tiles import encode_entry_bundle


class Misbehaving(MemoryLog):
    """A true log served over HTTP, with one kind of misbehaviour switched on."""

    mode = "honest"

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/log/")
        if path.startswith("tile/entries/"):
            if self.mode == "withhold entries":
                return httpx.Response(404)
            if self.mode == "short entries":
                return httpx.Response(200, content=encode_entry_bundle(self.datas[:1]))
            if self.mode == "entries unavailable":
                return httpx.Response(503)
        if path == "proof/consistency" and self.mode == "withhold proof":
            return httpx.Response(404)
        return super().handle(request)


@pytest.fixture
def log() -> Iterator[tuple[Misbehaving, str]]:
    served = Misbehaving(full_log().entries)
    app = FastAPI()

    @app.get("/log/{path:path}")
    def any_path(path: str, request: Request) -> Response:
        answer = served.handle(httpx.Request("GET", str(request.url)))
        return Response(answer.content, status_code=answer.status_code)

    with serving(app) as url:
        yield served, url


def _audit(url: str, *extra: str) -> Result:
    args = ["audit", url, "--key", MEM_SIGNER.vkey(), "--no-statistics", *extra]
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize(
    ("mode", "code", "words"),
    [
        ("honest", 0, "Checked"),
        ("withhold entries", 1, "does not serve it"),
        ("short entries", 1, "fewer entries"),
        ("entries unavailable", 2, "HTTP 503"),
    ],
)
def test_a_log_that_cannot_serve_what_it_signed_fails(
    log: tuple[Misbehaving, str], mode: str, code: int, words: str
) -> None:
    served, url = log
    served.mode = mode
    result = _audit(url)
    assert result.exit_code == code, result.output
    assert words in result.output
    assert "Traceback" not in result.output
    if code == 1:
        assert "FAILED the audit" in result.stdout


def test_a_log_that_will_not_prove_its_growth_fails(
    log: tuple[Misbehaving, str], tmp_path: Path
) -> None:
    served, url = log
    state = tmp_path / "state.json"
    served.size = len(served.datas) - 3
    assert _audit(url, "--state", str(state)).exit_code == 0
    served.size = len(served.datas)
    served.mode = "withhold proof"
    result = _audit(url, "--state", str(state))
    assert result.exit_code == 1, result.output
    assert "consistency proof" in result.output
    served.mode = "honest"
    assert _audit(url, "--state", str(state)).exit_code == 0


def test_no_server_is_exit_2() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _audit(f"http://127.0.0.1:{port}")
    assert result.exit_code == 2, result.output
    assert "was not audited" in result.stdout


def test_a_malformed_key_is_exit_2(log: tuple[Misbehaving, str]) -> None:
    _, url = log
    result = CliRunner().invoke(main, ["audit", url, "--key", "not-a-key", "--no-statistics"])
    assert result.exit_code == 2 and "--key" in result.stderr
