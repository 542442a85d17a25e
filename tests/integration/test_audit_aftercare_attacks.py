"""A dishonest operator leaving people untold, and publishing statistics that lie.

Round two of the hostile review of ``carewall audit``: the aftercare of a release (notices,
deferrals, appeals, withdrawals), the public statistics and the auditor's own state file
between incremental runs. The operator holds the log key, so every log here is signed and
every entry is schema-valid and canonical. Each test writes one sequence the service would
never write and asserts what the auditor SHOULD do: fail the audit with a finding naming
the entry at fault (or refuse a state file it cannot trust). Logs are served in process.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from audit_serving import MEM_SIGNER, MemoryLog, audit_in_memory
from audit_support import ORIGIN, LogBuilder, S, released_pair

from carewall.audit import AuditReport, audit_log, load_state, save_state, state_key
from carewall.deadlines import APPEAL_DAYS
from carewall.errors import InputError
from carewall.ledger.subjects import verify_subject
from carewall.service import logentries as le
from carewall.statistics import compute

Entries = list[dict[str, Any]]

THEFT = "theft_act_1968_s1"
CRIME = "dpa2018_sch2_p1_para2_crime"
HOLDER_REVIEWER = "ig-whittington"
APPEAL_REVIEWER = "caldicott-whittington"


# ----- helpers ---------------------------------------------------------------------------


def lines(report: AuditReport) -> list[str]:
    return [f.line() for f in report.findings + report.earlier_findings]


def flagged(report: AuditReport, *indices: int) -> bool:
    """Whether the audit failed with a finding at (or naming) one of ``indices``."""
    if report.ok:
        return False
    for f in report.findings + report.earlier_findings:
        for i in indices:
            if f.index == i or f"entry {i}" in f.message:
                return True
    return False


def two_people(b: LogBuilder) -> str:
    """A police request to the hospital about two people, sent for review."""
    return b.request(
        "met-police", "whittington-health", "prevention_detection_of_crime", CRIME,
        ["name", "address"], [S(), S()], offence=THEFT,
    )  # fmt: skip


def released(*, defer: bool = False) -> tuple[LogBuilder, str]:
    """A log holding one released request of two people (notices, or their deferral)."""
    return released_pair(defer=defer)


def later(b: LogBuilder, days: float, n: int = 1) -> None:
    """``n`` unrelated requests, ``days`` after the builder's clock."""
    b.clock += timedelta(days=days)
    for k in range(n):
        b.request(
            "met-police", "whittington-health", "prevention_detection_of_crime", CRIME,
            ["name"], [S()], offence=f"theft_act_1968_s{k + 2}",
        )  # fmt: skip


def where(entries: Sequence[dict[str, Any]], kind: str, rid: str | None = None) -> list[int]:
    return [
        i
        for i, e in enumerate(entries)
        if e["kind"] == kind and (rid is None or e.get("request") == rid)
    ]


def when(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))


def stamped(entry: dict[str, Any], at: datetime) -> dict[str, Any]:
    return dict(copy.deepcopy(entry), time=le.rfc3339(at))


def without(entries: Sequence[dict[str, Any]], drop: Sequence[int]) -> Entries:
    return [copy.deepcopy(e) for i, e in enumerate(entries) if i not in set(drop)]


# ----- notices: who is told ---------------------------------------------------------------


def test_notices_to_invented_subjects_pay_for_the_real_ones() -> None:
    """Both people released are owed a notice. The operator logs two notices, in time, but
    for commitments that are not among the request's subjects (its ``subjects_root``):
    nobody real is told, and the count of notices owed goes to 0."""
    b, rid = released()
    entries = copy.deepcopy(b.entries)
    notices = where(entries, "notice", rid)
    assert len(notices) == 2
    for n, i in enumerate(notices):
        entries[i]["subject"] = f"{n + 10:02x}" * 32  # no subject of the request
    report = audit_in_memory(entries)
    assert flagged(report, *notices), lines(report)


def test_notices_carrying_another_requests_subjects() -> None:
    """Two requests are released. Request A's notices carry the commitments of request
    B's people (real commitments, of the wrong request): A's people are never told."""
    b = LogBuilder().init()
    a = two_people(b)
    b.review(a, HOLDER_REVIEWER)
    other = two_people(b)
    b.review(other, HOLDER_REVIEWER)
    entries = copy.deepcopy(b.entries)
    a_notices = where(entries, "notice", a)
    for i, c in zip(a_notices, b.requests[other].commitments, strict=True):
        entries[i]["subject"] = c
    report = audit_in_memory(entries)
    assert flagged(report, *a_notices), lines(report)


def test_a_notice_to_a_real_subject_at_another_position() -> None:
    """Each of the two notices carries a real subject's commitment and a real path, but
    the second claims the first one's position: the second person is never told."""
    b, rid = released()
    entries = copy.deepcopy(b.entries)
    first, second = where(entries, "notice", rid)
    entries[second]["subject_position"] = entries[first]["subject_position"]
    report = audit_in_memory(entries)
    assert flagged(report, second), lines(report)


def test_a_notice_past_the_requests_subjects() -> None:
    """A notice names a position beyond the request's two subjects."""
    b, rid = released()
    entries = copy.deepcopy(b.entries)
    notices = where(entries, "notice", rid)
    entries[notices[1]]["subject_position"] = 2
    report = audit_in_memory(entries)
    assert flagged(report, notices[1]), lines(report)
    assert any("has 2 subject(s)" in x for x in lines(report)), lines(report)


def test_another_requests_notice_filed_under_this_one() -> None:
    """A's notices are B's own, unchanged (a real commitment with its real path to B's
    root), filed under A's id: nobody of A is told, and B's people are told twice."""
    b = LogBuilder().init()
    a = two_people(b)
    b.review(a, HOLDER_REVIEWER)
    other = two_people(b)
    b.review(other, HOLDER_REVIEWER)
    entries = copy.deepcopy(b.entries)
    a_notices = where(entries, "notice", a)
    for i, j in zip(a_notices, where(entries, "notice", other), strict=True):
        entries[i] = dict(copy.deepcopy(entries[j]), request=a, time=entries[i]["time"])
    report = audit_in_memory(entries)
    assert flagged(report, *a_notices), lines(report)


def test_a_notice_without_its_path_is_the_wrong_shape() -> None:
    """The old shape of a notice, the commitment alone, no longer passes."""
    b, rid = released()
    entries = copy.deepcopy(b.entries)
    notices = where(entries, "notice", rid)
    for i in notices:
        del entries[i]["subject_path"], entries[i]["subject_position"]
    report = audit_in_memory(entries)
    assert flagged(report, *notices), lines(report)


def test_honest_notices_carry_paths_that_lead_to_the_root() -> None:
    """The control for the four above: the builder's notices, as the service writes them,
    pass; and each path checks against the logged root by the public function alone."""
    b, rid = released()
    report = audit_in_memory(b.entries)
    assert report.ok, lines(report)
    (request,) = [e for e in b.entries if e["kind"] == "request" and e["request"] == rid]
    for i in where(b.entries, "notice", rid):
        n = b.entries[i]
        verify_subject(
            n["subject"], n["subject_position"], request["subjects"], n["subject_path"],
            request["subjects_root"],
        )  # fmt: skip


# ----- notices: when (the entries' times are the operator's to write) ----------------------


def test_notices_logged_a_month_late_but_dated_the_next_day() -> None:
    """The notices come a month after the release (after entries dated a month later) but
    carry a time one day after the release, so their lateness is never seen."""
    b, rid = released()
    notices = where(b.entries, "notice", rid)
    release_time = when(b.entries[where(b.entries, "release", rid)[0]])
    late = [stamped(b.entries[i], release_time + timedelta(days=1)) for i in notices]
    later(b, days=30, n=2)
    honest = [stamped(b.entries[i], b.clock) for i in notices]
    assert not audit_in_memory(without(b.entries, notices) + honest).ok  # control
    entries = without(b.entries, notices) + late
    first_late = len(entries) - len(late)
    report = audit_in_memory(entries)
    assert flagged(report, *range(first_late, len(entries))), lines(report)


def test_a_backdated_last_entry_hides_overdue_notices() -> None:
    """The notices never come. A month of entries follows the release; then the operator
    signs one last request dated the day after the release. The auditor's clock for what
    is overdue is the last entry's time, so nothing is overdue."""
    b, rid = released()
    notices = where(b.entries, "notice", rid)
    release_time = when(b.entries[where(b.entries, "release", rid)[0]])
    later(b, days=30, n=2)
    entries = without(b.entries, notices)
    assert not audit_in_memory(entries).ok  # control: dated honestly, the notices are overdue
    # the last transaction (a request and its decision) dated the day after the release
    entries[-2:] = [stamped(e, release_time + timedelta(days=1)) for e in entries[-2:]]
    report = audit_in_memory(entries)
    assert not report.ok, (report.notices_owed, lines(report))


def test_a_notice_dated_before_its_release() -> None:
    """The notices stand after the release in the log, but are dated an hour before it:
    the public record says the people were told before anything was released."""
    b, rid = released()
    entries = copy.deepcopy(b.entries)
    notices = where(entries, "notice", rid)
    release_time = when(entries[where(entries, "release", rid)[0]])
    for i in notices:
        entries[i] = stamped(entries[i], release_time - timedelta(hours=1))
    report = audit_in_memory(entries)
    assert flagged(report, *notices), lines(report)


def test_a_request_backdated_into_an_earlier_month_moves_the_monthly_statistics() -> None:
    """Entries run in March 2026; a request logged after them is dated December 2025. The
    public ``month`` table then counts it in a month whose entries were signed long ago."""
    b, _ = released()
    later(b, days=10, n=1)
    entries = copy.deepcopy(b.entries)
    back = datetime(2025, 12, 15, 10, 0, tzinfo=UTC)
    entries[-2:] = [stamped(e, back) for e in entries[-2:]]
    report = audit_in_memory(entries)
    assert flagged(report, len(entries) - 2, len(entries) - 1), lines(report)


# ----- deferrals ---------------------------------------------------------------------------


def test_a_lifted_deferral_whose_notices_never_come() -> None:
    b, rid = released(defer=True)
    b.lift(rid, HOLDER_REVIEWER)
    lift = where(b.entries, "deferral", rid)[-1]
    entries = without(b.entries, where(b.entries, "notice", rid))
    b.entries = entries
    b.groups = b.groups[: len(entries)]
    later(b, days=8)
    report = audit_in_memory(b.entries)
    assert any(f"due since entry {lift}" in ln for ln in lines(report)), lines(report)


def test_a_deferral_left_to_lapse_tells_nobody() -> None:
    """The notices are deferred with a review date 30 days ahead. The date passes and the
    log runs on for four months: no renewal, no lift, no notice. Due deferrals are to be
    lifted or renewed (contract §3); the auditor owes nothing and says nothing."""
    b, rid = released(defer=True)
    deferral = where(b.entries, "deferral", rid)[0]
    assert b.entries[deferral]["review_date"] is not None
    later(b, days=120, n=2)
    report = audit_in_memory(b.entries)
    assert flagged(report, deferral), (report.notices_owed, lines(report))


def test_a_deferral_renewed_long_after_its_review_date() -> None:
    """The review date (30 days) passes; 100 days later a reviewer 'renews' the deferral
    with a new date 60 days ahead of the renewal. Each renewal only checks its own date."""
    b, rid = released(defer=True)
    later(b, days=100)
    b.renew(rid, HOLDER_REVIEWER)
    renewal = len(b.entries) - 1
    report = audit_in_memory(b.entries)
    assert flagged(report, renewal), lines(report)


@pytest.mark.parametrize(
    "days", [0, -1, None], ids=["review-date-today", "review-date-yesterday", "no-review-date"]
)
def test_a_deferral_whose_review_date_is_not_ahead(days: int | None) -> None:
    b, rid = released(defer=True)
    entries = copy.deepcopy(b.entries)
    deferral = where(entries, "deferral", rid)[0]
    entries[deferral]["review_date"] = (
        None if days is None else (when(entries[deferral]).date() + timedelta(days)).isoformat()
    )
    report = audit_in_memory(entries)
    assert flagged(report, deferral), lines(report)


def test_a_deferral_of_fewer_people_than_were_released() -> None:
    b, rid = released(defer=True)
    entries = copy.deepcopy(b.entries)
    deferral = where(entries, "deferral", rid)[0]
    entries[deferral]["subjects"] = 1
    report = audit_in_memory(entries)
    assert flagged(report, deferral), lines(report)


# ----- appeals and withdrawals -------------------------------------------------------------


def test_a_subjects_appeal_never_decided() -> None:
    """A person appeals their release; the log runs on for 200 days and nobody ever decides
    the appeal: a finding names it (the statement counting it open is not enough)."""
    b, rid = released()
    b.appeal(rid, "subject")
    appeal = len(b.entries) - 1
    later(b, days=200, n=2)
    report = audit_in_memory(b.entries)
    assert flagged(report, appeal), (report.statement(), lines(report))


def test_an_appeal_decided_months_late() -> None:
    """The appeal is decided, by someone entitled to, 120 days after it was lodged."""
    b, rid = released()
    b.appeal(rid, "subject")
    later(b, days=120)
    b.decide_appeal(rid, "subject", APPEAL_REVIEWER, uphold=True)
    decided = len(b.entries) - 1
    report = audit_in_memory(b.entries)
    assert flagged(report, decided), lines(report)
    assert any(f"within {APPEAL_DAYS} days" in x for x in lines(report)), lines(report)


def test_an_appeal_decided_in_time_and_one_still_in_time_pass() -> None:
    """The controls: an appeal decided 80 days after it was lodged passes; one lodged 80
    days before the end of the log passes too, and the statement counts it as open."""
    b, rid = released()
    b.appeal(rid, "subject")
    later(b, days=80)
    b.decide_appeal(rid, "subject", APPEAL_REVIEWER, uphold=True)
    assert audit_in_memory(b.entries).ok
    b, rid = released()
    b.appeal(rid, "subject")
    later(b, days=80)
    report = audit_in_memory(b.entries)
    assert report.ok and report.appeals_open == 1, lines(report)
    assert "1 appeal(s) are lodged and not yet decided." in report.statement()


def test_an_appeal_left_open_is_found_by_a_later_incremental_run() -> None:
    """An auditor following the log with its --state file: the first run, 50 days after
    the appeal, passes; a run at 150 days fails it, from the state alone (the appeal was
    in the first run's entries); a run 10 days later says it again (a failure is never
    forgotten) without a second finding, and one 100 days later finds it anew."""
    b, rid = released()
    b.appeal(rid, "subject")
    appeal = len(b.entries) - 1
    later(b, days=50)
    log = MemoryLog(b.entries)
    first, state = log.audit()
    assert first.ok, lines(first)
    later(b, days=100)
    log = MemoryLog(b.entries)
    second, state = log.audit(state)
    assert flagged(second, appeal), lines(second)
    found = [f for f in second.findings if f"entry {appeal}" in f.message]
    assert len(found) == 1
    later(b, days=10)
    third, state = MemoryLog(b.entries).audit(state)
    assert not third.ok and not [f for f in third.findings if f"entry {appeal}" in f.message]
    later(b, days=100)
    fourth, _ = MemoryLog(b.entries).audit(state)
    assert [f for f in fourth.findings if f"entry {appeal}" in f.message], lines(fourth)


@pytest.mark.parametrize("order", ["release-after-withdrawal", "withdrawal-after-release"])
def test_a_withdrawal_and_a_release_of_one_request(order: str) -> None:
    b = LogBuilder().init()
    rid = two_people(b)
    if order == "release-after-withdrawal":
        b.withdraw(rid, "met-police")
        b.review(rid, HOLDER_REVIEWER)
        blamed = where(b.entries, "review", rid)
    else:
        b.review(rid, HOLDER_REVIEWER)
        b.withdraw(rid, "met-police")
        blamed = where(b.entries, "withdrawal", rid)
    report = audit_in_memory(b.entries)
    assert flagged(report, *blamed), lines(report)
    stats = compute(b.entries, origin="o", size=len(b.entries))
    assert stats.released == 1 and dict(stats.table("outcome"))["withdrawn"] == 0


# ----- the public statistics ---------------------------------------------------------------


class StatisticsLog(MemoryLog):
    """A signed log served in process beside its statistics: honest for
    ``/statistics.json?size=N`` (what the auditor asks for), and whatever ``lie`` makes of
    them everywhere else the instance publishes them (the latest JSON, the CSV)."""

    origin = ORIGIN

    def __init__(self, entries: Sequence[dict[str, Any]], lie: str) -> None:
        super().__init__(entries)
        self.parsed = [json.loads(d) for d in self.datas]
        self.lie = lie

    def stats(self, size: int, doctored: bool) -> Any:
        s = compute(self.parsed[:size], origin=self.origin, size=size)
        return dataclasses.replace(s, released=0) if doctored else s

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/statistics.json":
            size = request.url.params.get("size")
            doctored = size is None and self.lie == "latest-json"
            doc = self.stats(self.size if size is None else int(size), doctored).to_json()
            return httpx.Response(200, json=doc)
        if path == "/statistics.csv":
            size = request.url.params.get("size")
            doctored = self.lie == "csv"
            return httpx.Response(
                200,
                text=self.stats(self.size if size is None else int(size), doctored).to_csv(),
                headers={"content-type": "text/csv"},
            )
        return super().handle(request)

    def audit_statistics(self) -> AuditReport:
        transport = httpx.MockTransport(self.handle)
        with httpx.Client(transport=transport, base_url="http://memory/log/") as client:
            report, _ = audit_log(
                "http://memory", MEM_SIGNER.vkey(), None, client=client, statistics=True
            )
        return report


def _a_log_with_a_release() -> Entries:
    b, _ = released()
    later(b, days=1)
    return b.entries


def test_honest_statistics_served_in_process_pass() -> None:
    """Control: the in-process statistics server is honest where the auditor looks."""
    report = StatisticsLog(_a_log_with_a_release(), lie="none").audit_statistics()
    assert report.ok and report.statistics_match is True, lines(report)


@pytest.mark.parametrize("lie", ["latest-json", "csv"])
def test_statistics_that_lie_where_the_auditor_does_not_look(lie: str) -> None:
    """``/statistics.json?size=N`` (what the auditor fetches) is honest; the document the
    public reads without ``?size`` (the latest, for the same checkpoint) or the CSV
    download says 0 requests released."""
    log = StatisticsLog(_a_log_with_a_release(), lie=lie)
    report = log.audit_statistics()
    assert not report.ok, "the auditor accepted statistics that say 0 released"


# ----- the auditor's own state file between runs ------------------------------------------


def _two_runs(entries: Entries, split: int, tamper: Any) -> AuditReport | None:
    """Audit ``entries`` in two runs, the state file ``tamper``ed between them by someone
    without the auditor's key; None when the second run refuses the state file (what
    these tests want, or a finding)."""
    log = MemoryLog(entries)
    whole = log.size
    log.size = split
    _, state = log.audit()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.json"
        key, _ = state_key(Path(tmp) / "private" / "audit-state.key")
        save_state(path, state, key)
        saved = json.loads(path.read_text())
        tamper(saved)
        path.write_text(json.dumps(saved))
        log.size = whole
        try:
            loaded = load_state(path, key)
        except InputError:
            return None
    assert loaded is not None
    report, _ = log.audit(loaded)
    return report


def test_an_older_sealed_state_put_back_finds_the_same_again(tmp_path: Path) -> None:
    """The operator cannot forge a seal, but can put back the state of an earlier run,
    before a stray notice was found: the next run replays from there and finds it again."""
    b, rid = released()
    clean = len(b.entries)
    b.add(dict(copy.deepcopy(b.entries[where(b.entries, "notice", rid)[0]]), subject="ab" * 32))
    stray = len(b.entries) - 1
    later(b, days=1)
    key, _ = state_key(tmp_path / "private" / "audit-state.key")
    path = tmp_path / "state.json"
    log = MemoryLog(b.entries)
    whole, log.size = log.size, clean
    first, state = log.audit()
    assert first.ok
    save_state(path, state, key)
    before = path.read_bytes()
    log.size = whole
    second, state = log.audit(load_state(path, key))
    assert flagged(second, stray)
    save_state(path, state, key)
    path.write_bytes(before)  # put back
    third, _ = log.audit(load_state(path, key))
    assert flagged(third, stray), lines(third)


def test_a_state_file_with_its_findings_erased() -> None:
    """Run 1 finds a notice nobody owes. Between runs the findings are erased from the
    state file; run 2 says the log passed."""
    b, rid = released()
    stray = dict(copy.deepcopy(b.entries[where(b.entries, "notice", rid)[0]]), subject="ab" * 32)
    b.add(stray)
    split = len(b.entries)
    later(b, days=1)

    def erase(saved: dict[str, Any]) -> None:
        assert saved["findings"], "run 1 should have found the stray notice"
        saved["findings"] = []

    control = _two_runs(b.entries, split, lambda saved: None)
    assert control is not None and not control.ok
    report = _two_runs(b.entries, split, erase)
    assert report is None or not report.ok, report.statement()


def test_a_state_file_whose_notice_debt_was_zeroed() -> None:
    """Run 1 ends a day after a release whose notices are still on their way (owed, not
    yet late). Between runs the debt is zeroed in the state file; run 2 covers eight
    more days without the notices and finds nothing overdue."""
    b, rid = released()
    entries = without(b.entries, where(b.entries, "notice", rid))
    b.entries, b.groups = entries, b.groups[: len(entries)]
    later(b, days=1)
    split = len(b.entries)
    later(b, days=8)

    def forget(saved: dict[str, Any]) -> None:
        request = saved["replay"]["requests"][rid]
        assert request["owed"] == 2
        request.update(owed=0, owed_since="", owed_index=-1)

    control = _two_runs(b.entries, split, lambda saved: None)
    assert control is not None and any("notice(s)" in ln for ln in lines(control))
    report = _two_runs(b.entries, split, forget)
    assert report is None or not report.ok, report.statement()
