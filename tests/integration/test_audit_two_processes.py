"""The audit in two processes (a forked reader: carewall.audit.pipeline) judges as one does.

Every hostile log the suite audits in memory is audited both ways and compared
(``MemoryLog.audit``); these are the cases only the second process has: it is a process of
its own, its errors are raised in the auditor with their meaning, it dying is no verdict,
and a real served log over loopback through ``carewall audit`` takes it by default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from audit_serving import MEM_SIGNER, MemoryLog, Server, audit, make_log, running
from audit_support import LogBuilder, busy_log

from carewall.audit import audit_log, run
from carewall.audit.fetch import FetchError
from carewall.audit.pipeline import Reader
from carewall.errors import VerificationError

CRIME = "dpa2018_sch2_p1_para2_crime"
THEFT = "theft_act_1968_s1"


class _Faulty(MemoryLog):
    """Serves its log, but answers ``status`` for entry bundle ``bad``."""

    def __init__(self, entries: list[bytes], bad: int, status: int) -> None:
        super().__init__(entries)
        self.bad, self.status = bad, status

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(f"/tile/entries/{self.bad:03d}"):
            return httpx.Response(self.status)
        return super().handle(request)


def _entries(b: LogBuilder) -> list[bytes]:
    log = MemoryLog(b.entries)
    return log.datas


def test_a_busy_log_is_judged_alike_in_one_process_and_two() -> None:
    b = busy_log()
    b.entries.insert(300, {"v": 1, "kind": "policy"})  # a malformed entry mid-way
    log = MemoryLog(b.entries)
    assert log.size > 2 * 256
    report, _ = log.audit()  # fails unless both modes agree
    assert not report.ok
    assert any(f.index == 300 for f in report.findings)


def test_the_reader_runs_in_a_process_of_its_own(tmp_path: Path) -> None:
    log = MemoryLog(busy_log(40).entries)
    seen = tmp_path / "pid"
    transport = httpx.MockTransport(log.handle)

    def connect() -> httpx.Client:
        seen.write_text(str(os.getpid()))
        return httpx.Client(transport=transport, base_url="http://memory/log/")

    with connect() as client:
        seen.unlink()
        report, _ = audit_log(
            "http://memory", MEM_SIGNER.vkey(), client=client, parallel=True, connect=connect
        )
    assert report.ok, report.findings[:3]
    assert int(seen.read_text()) != os.getpid()


def test_a_server_error_for_a_later_bundle_is_a_fetch_error_in_both() -> None:
    log = _Faulty(_entries(busy_log()), bad=1, status=503)
    for two in (False, True):
        with pytest.raises(FetchError, match="HTTP 503"):
            log.audit(parallel=two)


def test_a_signed_for_bundle_the_log_does_not_serve_is_a_verification_error_in_both() -> None:
    log = _Faulty(_entries(busy_log()), bad=1, status=404)
    for two in (False, True):
        with pytest.raises(VerificationError, match="does not serve it"):
            log.audit(parallel=two)


def test_an_entry_altered_after_signing_fails_the_root_in_both() -> None:
    log = MemoryLog(busy_log().entries)
    log.datas[300] = log.datas[300].replace(b'"v":1', b'"v":1 ', 1)
    for two in (False, True):
        with pytest.raises(VerificationError, match="do not rebuild the signed root"):
            log.audit(parallel=two)


def test_a_reader_that_dies_is_no_verdict_but_a_fetch_error() -> None:
    log = MemoryLog(busy_log(40).entries)
    transport = httpx.MockTransport(log.handle)

    def dies() -> httpx.Client:
        os._exit(3)

    with (
        httpx.Client(transport=transport, base_url="http://memory/log/") as client,
        pytest.raises(FetchError, match="stopped before the end"),
    ):
        audit_log("http://memory", MEM_SIGNER.vkey(), client=client, parallel=True, connect=dies)


def test_an_incremental_audit_continues_alike_in_both() -> None:
    b = busy_log()
    log = MemoryLog(b.entries)
    log.size = 300
    _, state = log.audit()
    log.size = len(log.datas)
    one, s1 = log.audit(state, parallel=False)
    two, s2 = log.audit(state, parallel=True)
    assert (one, s1) == (two, s2)
    assert one.ok and one.previous_size == 300


def test_carewall_audit_of_a_served_log_takes_two_processes_and_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # More new entries than the threshold: the CLI's own client, a reader of its own.
    readers: list[Reader] = []

    class Seen(Reader):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            readers.append(self)

    monkeypatch.setattr(run, "Reader", Seen)
    b = busy_log(1400)
    assert len(b.entries) > 4096
    log = make_log(tmp_path, "busy", tmp_path / "busy.key", b.entries)
    with running(Server()) as server:
        server.serve(log)
        result = audit(server, log.vkey)
    assert result.exit_code == 0, result.stdout[-2000:]
    assert len(readers) == 1 and readers[0].crange is not None
    assert readers[0].crange.size == len(b.entries)
