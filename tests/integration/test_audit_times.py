"""Entries' times in the audit: the clock never goes back, and deferrals have a deadline.

Controls and edges of the rules that ``test_audit_aftercare_attacks`` attacks: an honest
entry may stand a few minutes behind the one before it (the service reads its clock before
some writers' lock), never more; what is overdue is judged by the latest time seen; a
deferral due for review is lifted or renewed within the grace; and state files written
before the auditor kept a deferral's review date still load.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from audit_serving import MemoryLog, audit_in_memory
from audit_support import LogBuilder, S

from carewall.audit import AuditReport, AuditState
from carewall.audit.aftercare import DEFERRAL_GRACE_DAYS
from carewall.audit.replay import TIME_SKEW_SECONDS
from carewall.errors import InputError
from carewall.service import logentries as le

REVIEWER = "ig-whittington"


def lines(report: AuditReport) -> list[str]:
    return [f.line() for f in report.findings + report.earlier_findings]


def released(*, defer: bool = False) -> tuple[LogBuilder, str]:
    b = LogBuilder().init()
    rid = b.request(
        "met-police", "whittington-health", "prevention_detection_of_crime",
        "dpa2018_sch2_p1_para2_crime", ["name", "address"], [S(), S()],
        offence="theft_act_1968_s1",
    )  # fmt: skip
    b.review(rid, REVIEWER, defer=defer)
    return b, rid


def later(b: LogBuilder, days: float) -> None:
    """One unrelated request (and its decision), ``days`` after the builder's clock."""
    b.clock += timedelta(days=days)
    b.request(
        "met-police", "whittington-health", "prevention_detection_of_crime",
        "dpa2018_sch2_p1_para2_crime", ["name"], [S()], offence="theft_act_1968_s2",
    )  # fmt: skip


def behind(entries: list[dict[str, Any]], seconds: int) -> list[dict[str, Any]]:
    """``entries`` with the last two (a request and its decision) dated ``seconds``
    before the entry ahead of them."""
    out = copy.deepcopy(entries)
    ahead = datetime.fromisoformat(out[-3]["time"].replace("Z", "+00:00"))
    for e in out[-2:]:
        e["time"] = le.rfc3339(ahead - timedelta(seconds=seconds))
    return out


# ----- the clock ---------------------------------------------------------------------------


def test_an_entry_a_little_behind_the_one_before_it_passes() -> None:
    """A writer that read the clock before the lock, overtaken by another: honest."""
    b, _ = released()
    later(b, days=1)
    entries = behind(b.entries, TIME_SKEW_SECONDS - 60)
    log = MemoryLog(entries)
    report, state = log.audit()
    assert report.ok, lines(report)
    assert state.replay is not None
    # the clock is the latest time seen, not the last entry's
    assert state.replay["latest_time"] == entries[-3]["time"]


def test_an_entry_just_past_the_allowed_skew_fails() -> None:
    b, _ = released()
    later(b, days=1)
    entries = behind(b.entries, TIME_SKEW_SECONDS + 60)
    report = audit_in_memory(entries)
    assert not report.ok
    at = {f.index for f in report.findings}
    assert {len(entries) - 2, len(entries) - 1} <= at, lines(report)
    assert any("never go back" in ln for ln in lines(report)), lines(report)


def test_entries_of_one_time_pass() -> None:
    """Entries written together share their time; equal times are in order."""
    b, _ = released()
    later(b, days=0)
    entries = copy.deepcopy(b.entries)
    for e in entries[-4:]:
        e["time"] = entries[-4]["time"]
    report = audit_in_memory(entries)
    assert report.ok, lines(report)


# ----- deferrals -----------------------------------------------------------------------------


def test_a_deferral_renewed_in_time_then_lifted_within_the_grace_passes() -> None:
    b, rid = released(defer=True)
    later(b, days=20)
    b.renew(rid, REVIEWER)  # a new review date 60 days ahead
    later(b, days=60 + DEFERRAL_GRACE_DAYS - 1)
    b.lift(rid, REVIEWER)
    later(b, days=1)
    report = audit_in_memory(b.entries)
    assert report.ok, lines(report)


def test_a_deferral_lifted_long_after_its_review_date_fails() -> None:
    b, rid = released(defer=True)
    deferral = next(i for i, e in enumerate(b.entries) if e["kind"] == "deferral")
    later(b, days=30 + DEFERRAL_GRACE_DAYS + 5)  # review date: 30 days after the release
    b.lift(rid, REVIEWER)
    lift = next(i for i, e in enumerate(b.entries) if e.get("action") == "lifted")
    report = audit_in_memory(b.entries)
    assert any(f.index == lift and f"entry {deferral}" in f.message for f in report.findings), (
        lines(report)
    )


def test_a_deferral_due_but_within_the_grace_at_the_end_passes() -> None:
    b, _ = released(defer=True)
    later(b, days=30 + DEFERRAL_GRACE_DAYS - 1)
    report = audit_in_memory(b.entries)
    assert report.ok, lines(report)


def test_a_lapse_is_reported_once_per_grace_across_runs() -> None:
    """Run 1 ends with the deferral lapsed (one finding); run 2, two days on, adds none;
    the late lift in run 2 is not reported a second time either."""
    b, rid = released(defer=True)
    later(b, days=30 + DEFERRAL_GRACE_DAYS + 3)
    split = len(b.entries)
    later(b, days=2)
    b.lift(rid, REVIEWER)
    log = MemoryLog(b.entries)
    whole, log.size = log.size, split
    first, state = log.audit()
    lapsed = [f for f in first.findings if f.kind == "deferral"]
    assert len(lapsed) == 1, lines(first)
    log.size = whole
    second, _ = log.audit(AuditState.from_json(json.loads(json.dumps(state.to_json()))))
    assert [f for f in second.findings if f.kind == "deferral"] == [], lines(second)
    assert not second.ok  # the earlier finding is never forgotten


# ----- the state file ----------------------------------------------------------------------


def _split_state(b: LogBuilder, split: int) -> tuple[MemoryLog, dict[str, Any], int]:
    log = MemoryLog(b.entries)
    whole, log.size = log.size, split
    _, state = log.audit()
    log.size = whole
    return log, json.loads(json.dumps(state.to_json())), whole


def test_a_state_file_written_before_review_dates_were_kept_still_loads() -> None:
    b, rid = released(defer=True)
    split = len(b.entries)
    later(b, days=1)
    log, saved, _ = _split_state(b, split)
    request = saved["replay"]["requests"][rid]
    assert request["review_date"] is not None
    del request["review_date"], request["review_reported"]
    report, _ = log.audit(AuditState.from_json(saved))
    assert report.ok, lines(report)


@pytest.mark.parametrize("latest", ["yesterday", "2026-02-30T10:00:00Z", 5])
def test_a_state_file_with_a_malformed_clock_is_refused(latest: Any) -> None:
    b, _ = released()
    split = len(b.entries)
    later(b, days=1)
    log, saved, _ = _split_state(b, split)
    saved["replay"]["latest_time"] = latest
    with pytest.raises(InputError):
        log.audit(AuditState.from_json(saved))
