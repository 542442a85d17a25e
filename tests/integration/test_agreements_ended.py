"""An agreement past its end, with data released under it, is withdrawn within
``AGREEMENT_END_GRACE_DAYS`` (30) of its end, or the auditor says so, once, and the public
statistics count it (``ended_not_withdrawn``) until it is.

The hospital–police agreement here ends on 2026-03-03; one release is made under it on
2026-03-02 (the builder's clock), so it is to be withdrawn by 2026-04-02. Logs are written
as the service would write them, and audited in process, whole or run after run with the
auditor's sealed ``--state`` file.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from audit_serving import MEM_SIGNER, MemoryLog, audit_in_memory
from audit_support import ORIGIN, LogBuilder, S

from carewall.audit import AuditReport, AuditState, audit_log, load_state, save_state, state_key
from carewall.deadlines import AGREEMENT_END_GRACE_DAYS, agreement_withdraw_by
from carewall.statistics import Statistics, compute

CRIME = "dpa2018_sch2_p1_para2_crime"
THEFT = "theft_act_1968_s1"
ISA = "whittington-met-police-isa"
END = "2026-03-03"
BY = agreement_withdraw_by(END)  # 2026-04-02


def lines(report: AuditReport) -> list[str]:
    return [f.line() for f in report.findings]


def ended(report: AuditReport, *, earlier: bool = False) -> list[str]:
    """The findings (this run's, or with ``earlier`` the runs' before too) about the
    agreement's end."""
    found = report.findings + (report.earlier_findings if earlier else [])
    return [f.line() for f in found if f.kind == "agreement" and f"ended on {END}" in f.message]


def figure(entries: Sequence[dict[str, Any]], name: str = "ended_not_withdrawn") -> int:
    return dict(compute(entries, origin=ORIGIN, size=len(entries)).agreements)[name]


def on(b: LogBuilder, day: str, *, hour: int = 12) -> None:
    """Move the builder's clock to ``day`` (the next entry is written a few minutes later)."""
    b.clock = datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC).replace(hour=hour)


def an_entry_on(b: LogBuilder, day: str) -> None:
    """Any entry, written on ``day``: the log's own date moves on only with its entries."""
    on(b, day)
    n = sum(1 for e in b.entries if e["kind"] == "organisation")
    b.organisation(f"later-council-{n}", f"Later Borough Council {n}", "local_authority")


def agreement_with_a_release(*, released: bool = True) -> LogBuilder:
    """The agreement (to 2026-03-03) registered, and one release under it on 2026-03-02."""
    b = LogBuilder().init()
    b.agreement("registered", start="2026-01-01", end=END)
    if released:
        rid = b.request(
            "met-police", "whittington-health", "prevention_detection_of_crime", CRIME,
            ["name", "address"], [S()], offence=THEFT,
        )  # fmt: skip
        b.review(rid, "ig-whittington")
    return b


def withdraw(b: LogBuilder, day: str) -> int:
    """The withdrawal the service would log on ``day``: the counts of the log, destruction
    due 30 days later. Its index."""
    on(b, day)
    due = (date.fromisoformat(day) + timedelta(days=30)).isoformat()
    counts = {"releases": 1, "subjects": 1, "released": ["address", "name"], "due": due}
    b.agreement("withdrawn", start="2026-01-01", end=END, **counts)
    return len(b.entries) - 1


# ----- the rule -------------------------------------------------------------------------------


def test_the_grace_is_thirty_days_after_the_end() -> None:
    assert AGREEMENT_END_GRACE_DAYS == 30 and BY == "2026-04-02"
    assert agreement_withdraw_by("9999-12-31") == "9999-12-31"  # never late, never a crash


def test_an_ended_agreement_not_withdrawn_is_one_finding_naming_it_and_its_end() -> None:
    b = agreement_with_a_release()
    an_entry_on(b, "2026-04-02")  # the last day to withdraw: not late yet
    report = audit_in_memory(b.entries)
    assert report.ok and figure(b.entries) == 0, lines(report)
    an_entry_on(b, "2026-04-03")
    report = audit_in_memory(b.entries)
    (line,) = ended(report)
    assert line.startswith(f"entry {len(b.entries)} (agreement): agreement {ISA!r} ended on {END}")
    assert f"withdrawn by {BY}" in line and "1 release(s)" in line
    assert [f.kind for f in report.findings] == ["agreement"], lines(report)
    assert figure(b.entries) == 1


def test_an_ended_agreement_with_nothing_released_under_it_is_not_a_finding() -> None:
    b = agreement_with_a_release(released=False)
    an_entry_on(b, "2027-04-06")
    report = audit_in_memory(b.entries)
    assert report.ok, lines(report)
    assert figure(b.entries) == 0


def test_releases_outside_the_agreement_s_dates_or_parties_are_not_under_it() -> None:
    """A release the day after the end, and one to the same police for another purpose,
    are not under the agreement: it ends with nothing to destroy."""
    b = LogBuilder().init()
    b.agreement("registered", start="2026-01-01", end="2026-03-01")  # ended the day before
    rid = b.request(
        "met-police", "whittington-health", "prevention_detection_of_crime", CRIME,
        ["name", "address"], [S()], offence=THEFT,
    )  # fmt: skip
    b.review(rid, "ig-whittington")
    an_entry_on(b, "2027-04-06")
    report = audit_in_memory(b.entries)
    assert report.ok, lines(report)
    assert figure(b.entries) == 0


def test_an_ended_agreement_withdrawn_within_the_grace_is_not_a_finding() -> None:
    b = agreement_with_a_release()
    withdraw(b, BY)
    an_entry_on(b, "2026-04-20")  # before its destruction is due
    report = audit_in_memory(b.entries)
    assert report.ok, lines(report)
    assert figure(b.entries) == 0
    assert figure(b.entries, "destruction_requested") == 1


def test_an_ended_agreement_withdrawn_after_the_grace_is_one_finding_at_its_withdrawal() -> None:
    b = agreement_with_a_release()
    at = withdraw(b, "2026-05-12")
    an_entry_on(b, "2026-05-20")
    report = audit_in_memory(b.entries)
    found = [f for f in report.findings if f.kind == "agreement"]
    assert [f.index for f in found] == [at], lines(report)
    assert f"withdraws agreement {ISA!r} on 2026-05-12" in found[0].message
    assert f"ended on {END}" in found[0].message and f"withdrawn by {BY}" in found[0].message
    assert len(report.findings) == 1, lines(report)
    # withdrawn now: counted as a destruction asked for, no longer as ended and not withdrawn
    assert figure(b.entries) == 0 and figure(b.entries, "destruction_requested") == 1


def test_an_ended_agreement_found_by_a_later_incremental_run_is_reported_once(
    tmp_path: Path,
) -> None:
    """An auditor following the log with its sealed --state file: within the grace the run
    passes; the first run past it fails, from the state alone (the agreement and its
    release were in the first run's entries); later runs say it again (a failure is never
    forgotten) with no second finding, a late withdrawal included."""
    key, _ = state_key(tmp_path / "private" / "audit-state.key")
    path = tmp_path / "state.json"

    def run(b: LogBuilder) -> AuditReport:
        report, state = MemoryLog(b.entries).audit(load_state(path, key))
        save_state(path, state, key)
        return report

    b = agreement_with_a_release()
    an_entry_on(b, "2026-03-20")
    first = run(b)
    assert first.ok, lines(first)
    an_entry_on(b, "2026-04-03")
    second = run(b)
    assert len(ended(second)) == 1 and not second.ok, lines(second)
    assert ended(second)[0].startswith(f"entry {len(b.entries)} (agreement)")
    an_entry_on(b, "2026-06-01")
    third = run(b)
    assert not third.ok and ended(third) == [] and len(ended(third, earlier=True)) == 1
    withdraw(b, "2026-06-02")  # late, and already reported: not a second finding
    fourth = run(b)
    assert not fourth.ok and fourth.findings == [], lines(fourth)
    assert len(ended(fourth, earlier=True)) == 1


# ----- the statistics, published and recomputed ------------------------------------------------


class StatisticsLog(MemoryLog):
    """A signed log served in process beside its honest statistics (JSON and CSV)."""

    def __init__(self, entries: Sequence[dict[str, Any]]) -> None:
        super().__init__(entries)
        self.parsed = [json.loads(d) for d in self.datas]

    def stats(self, request: httpx.Request) -> Statistics:
        size = int(request.url.params.get("size", self.size))
        return compute(self.parsed[:size], origin=ORIGIN, size=size)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/statistics.json":
            return httpx.Response(200, json=self.stats(request).to_json())
        if request.url.path == "/statistics.csv":
            return httpx.Response(200, text=self.stats(request).to_csv())
        return super().handle(request)

    def audit_statistics(self, state: AuditState | None) -> tuple[AuditReport, AuditState]:
        transport = httpx.MockTransport(self.handle)
        with httpx.Client(transport=transport, base_url="http://memory/log/") as client:
            return audit_log(
                "http://memory", MEM_SIGNER.vkey(), state, client=client, statistics=True
            )


def test_the_statistic_counts_it_and_the_auditor_recomputes_it() -> None:
    b = agreement_with_a_release()
    an_entry_on(b, "2026-05-01")
    report, _ = StatisticsLog(b.entries).audit_statistics(None)
    assert report.statistics_match is True and len(ended(report)) == 1, lines(report)
    doc = compute(b.entries, origin=ORIGIN, size=len(b.entries)).to_json()
    assert doc["agreements"]["ended_not_withdrawn"] == 1
    assert doc["agreements"]["destruction_overdue"] == 0  # its meaning is unchanged
    assert Statistics.from_json(json.loads(json.dumps(doc))).to_json() == doc


def test_a_state_file_from_before_ended_agreements_were_counted_still_loads_and_counts() -> None:
    """A state saved before the statistics kept agreements' terms and release days (and
    before lateness was reported) loads; what it lacks is rebuilt from the replay's own
    agreements and releases, so the published figure still matches and is found."""
    b = agreement_with_a_release()
    an_entry_on(b, "2026-03-20")
    split = len(b.entries)
    an_entry_on(b, "2026-05-01")
    log = StatisticsLog(b.entries)
    log.size = split
    first, state = log.audit_statistics(None)
    assert first.ok and first.statistics_match is True, lines(first)
    saved = copy.deepcopy(state.to_json())
    replay = saved["replay"]
    del replay["statistics"]["agreement_terms"], replay["statistics"]["release_days"]
    del replay["agreements"]["ended_reported"]
    log.size = len(b.entries)
    second, _ = log.audit_statistics(AuditState.from_json(json.loads(json.dumps(saved))))
    assert second.statistics_match is True, lines(second)
    assert len(ended(second)) == 1, lines(second)
