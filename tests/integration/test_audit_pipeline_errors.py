"""What the two-process audit (carewall.audit.pipeline) tells, and when the published
statistics (fetched while the entries are read: carewall.audit.statistics.Prefetch) are
judged: the same findings and the same errors, at the same point, in one process and two.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from audit_serving import MEM_SIGNER, MemoryLog
from audit_support import ORIGIN, busy_log

from carewall.audit import AuditReport, AuditState, audit_log
from carewall.errors import CarewallError, VerificationError
from carewall.statistics import Tally

CRIME = "dpa2018_sch2_p1_para2_crime"
THEFT = "theft_act_1968_s1"
SECRET = "a-value-only-an-entry-holds"


class _Raises(MemoryLog):
    """Serves its log, but its transport raises a ValueError quoting ``SECRET`` for entry
    bundle 1 (as a library's exception could quote what it was handed)."""

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/tile/entries/001"):
            raise ValueError(f"cannot handle {SECRET!r}")
        return super().handle(request)


def test_an_unexpected_error_in_the_reader_is_told_by_its_type_alone() -> None:
    log = _Raises(busy_log().entries)
    assert log.size > 2 * 256
    with pytest.raises(ValueError, match=SECRET):  # one process: the exception itself
        log.audit(parallel=False)
    with pytest.raises(RuntimeError) as e:
        log.audit(parallel=True)
    assert str(e.value) == "the audit's reader process failed: ValueError"
    assert SECRET not in str(e.value)


class _Published(MemoryLog):
    """Serves its log and the statistics beside it: the true ones, or ``answers``
    (a status, or a function of the true JSON document) for a path with its query."""

    def __init__(self, entries: list[bytes], answers: dict[str, Any] | None = None) -> None:
        super().__init__(entries)
        self.answers = answers or {}
        self.asked: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not path.startswith("/statistics."):
            return super().handle(request)
        query = request.url.query.decode()
        asked = path + (f"?{query}" if query else "")
        self.asked.append(asked)
        tally = Tally()
        for data in self.datas[: self.size]:
            tally.feed(json.loads(data))
        stats = tally.result(ORIGIN, self.size)
        answer = self.answers.get(asked)
        if isinstance(answer, int):
            return httpx.Response(answer)
        if path == "/statistics.csv":
            return httpx.Response(200, content=stats.to_csv().encode())
        doc = stats.to_json()
        if answer is not None:
            answer(doc)
        return httpx.Response(200, json=doc)

    def run(self, parallel: bool, statistics: bool = True) -> tuple[AuditReport, AuditState]:
        """The audit, in one process or two, with the statistics checked or not."""
        transport = httpx.MockTransport(self.handle)

        def connect() -> httpx.Client:
            return httpx.Client(transport=transport, base_url="http://memory/log/")

        self.asked.clear()
        with connect() as client:
            return audit_log(
                "http://memory",
                MEM_SIGNER.vkey(),
                client=client,
                statistics=statistics,
                parallel=parallel,
                connect=connect if parallel else None,
            )

    def judged(self, parallel: bool) -> tuple[AuditReport, AuditState] | tuple[str, str]:
        """The audit with statistics, in one process or two: its report and state, or the
        name and message of its error."""
        try:
            return self.run(parallel)
        except CarewallError as e:
            return type(e).__name__, e.message

    def both(self) -> tuple[AuditReport, AuditState] | tuple[str, str]:
        one = self.judged(False)
        two = self.judged(True)
        assert one == two, "one process and two disagree"
        return one


def _entries() -> list[bytes]:
    return MemoryLog(busy_log().entries).datas


def test_true_statistics_match_in_one_process_and_two() -> None:
    log = _Published(_entries())
    outcome = log.both()
    assert isinstance(outcome[0], AuditReport)
    assert outcome[0].ok and outcome[0].statistics_match is True
    size = log.size
    assert sorted(log.asked) == sorted(
        [f"/statistics.json?size={size}", "/statistics.json", f"/statistics.csv?size={size}"]
    )


def test_doctored_statistics_are_the_same_findings_in_one_process_and_two() -> None:
    size = len(_entries())

    def fewer(doc: dict[str, Any]) -> None:
        doc["firewall"]["received"] -= 1

    log = _Published(_entries(), {f"/statistics.json?size={size}": fewer})
    report = log.both()[0]
    assert isinstance(report, AuditReport)
    assert report.statistics_match is False
    lines = [f.line() for f in report.findings]
    assert lines and all(f.index == size for f in report.findings), lines


@pytest.mark.parametrize("status", [503, 429])
def test_a_server_error_for_the_statistics_is_a_fetch_error_in_both(status: int) -> None:
    size = len(_entries())
    log = _Published(_entries(), {f"/statistics.json?size={size}": status})
    assert log.both() == ("FetchError", f"/statistics.json answered HTTP {status}")


def test_a_later_document_that_fails_is_a_fetch_error_when_its_turn_comes() -> None:
    size = len(_entries())
    log = _Published(_entries(), {f"/statistics.csv?size={size}": 503})
    assert log.both() == ("FetchError", "/statistics.csv answered HTTP 503")


def test_a_document_the_check_never_reads_cannot_fail_it() -> None:
    # Missing statistics are a finding, and the check reads no further: whatever the
    # server answers for the rest (fetched ahead, perhaps) is no error.
    size = len(_entries())
    answers = {f"/statistics.json?size={size}": 404, f"/statistics.csv?size={size}": 503}
    log = _Published(_entries(), answers)
    report = log.both()[0]
    assert isinstance(report, AuditReport)
    assert report.statistics_match is False
    assert [f.line() for f in report.findings] == [
        f"entry {size} (statistics): /statistics.json?size={size} is not published (HTTP "
        "404); every carewall instance publishes its statistics (pass --no-statistics only "
        "for a log of other software)"
    ]


def test_a_log_that_fails_its_root_fails_it_whatever_the_statistics_say() -> None:
    entries = _entries()
    size = len(entries)
    log = _Published(entries, {f"/statistics.json?size={size}": 503})
    log.datas[300] = log.datas[300].replace(b'"v":1', b'"v":1 ', 1)
    for parallel in (False, True):
        with pytest.raises(VerificationError, match="do not rebuild the signed root"):
            log.run(parallel)


def test_no_statistics_are_fetched_when_none_are_checked() -> None:
    log = _Published(_entries())
    for parallel in (False, True):
        report, _ = log.run(parallel, statistics=False)
        assert report.ok and report.statistics_match is None
        assert log.asked == []


def test_a_fetch_error_in_the_reader_keeps_its_meaning_over_the_statistics() -> None:
    size = len(_entries())

    class Faulty(_Published):
        def handle(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/tile/entries/001"):
                return httpx.Response(503)
            return super().handle(request)

    log = Faulty(_entries(), {f"/statistics.json?size={size}": 404})
    assert log.both() == ("FetchError", "/log/tile/entries/001 answered HTTP 503")


def test_the_statistics_are_not_asked_before_the_checkpoint() -> None:
    # Fetched ahead, but for the size the signed checkpoint gives, and only once known.
    log = _Published(_entries())
    log.size = 300
    report = log.both()[0]
    assert isinstance(report, AuditReport) and report.statistics_match is True
    assert "/statistics.json?size=300" in log.asked
