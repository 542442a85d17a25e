"""Notices written after their release, by a job: what the auditor accepts and what it fails.

A release's notices are no longer in its transaction (issue 13, item 3): the replay counts
the notices each request owes and judges them by the entries' times. Each way an operator
could use that freedom to leave people untold is a named case here.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from audit_serving import audit_in_memory
from audit_support import LogBuilder, S

from carewall.service import logentries as le

Entries = list[dict[str, Any]]


def released() -> tuple[LogBuilder, str, list[int]]:
    """A log with one release of two people; the indices of its two notices."""
    b = LogBuilder().init()
    rid = b.request(
        "met-police", "whittington-health", "prevention_detection_of_crime",
        "dpa2018_sch2_p1_para2_crime", ["name", "address"], [S(), S()],
        offence="theft_act_1968_s1",
    )  # fmt: skip
    b.review(rid, "ig-whittington")
    notices = [i for i, e in enumerate(b.entries) if e["kind"] == "notice"]
    assert len(notices) == 2
    return b, rid, notices


def later_requests(b: LogBuilder, n: int, days: float = 0) -> None:
    b.clock += timedelta(days=days)
    for k in range(n):
        b.request(
            "met-police", "whittington-health", "prevention_detection_of_crime",
            "dpa2018_sch2_p1_para2_crime", ["name"], [S()], offence=f"theft_act_1968_s{k + 2}",
        )  # fmt: skip


def moved_to_end(b: LogBuilder, notices: list[int], days: float) -> Entries:
    """The notices taken out of the release's place and logged after everything else,
    ``days`` after the last entry, as a slow job would log them."""
    kept = [copy.deepcopy(e) for i, e in enumerate(b.entries) if i not in notices]
    last = b.clock + timedelta(days=days)
    moved = [dict(copy.deepcopy(b.entries[i]), time=le.rfc3339(last)) for i in notices]
    return kept + moved


def lines(entries: Entries) -> list[str]:
    return [f.line() for f in audit_in_memory(entries).findings]


def test_notices_logged_after_other_requests_pass() -> None:
    b, _, notices = released()
    later_requests(b, 3)
    report = audit_in_memory(moved_to_end(b, notices, days=0))
    assert report.ok, [f.line() for f in report.findings]
    assert report.notices_owed == 0


def test_notices_still_on_their_way_are_counted_in_the_statement() -> None:
    b, _, notices = released()
    later_requests(b, 2)
    kept = [e for i, e in enumerate(b.entries) if i not in notices]
    report = audit_in_memory(kept)
    assert report.ok and report.notices_owed == 2
    assert "2 notice(s) are due and not yet in the log." in report.statement()


def test_notices_missing_a_week_after_the_release_fail() -> None:
    b, _rid, notices = released()
    later_requests(b, 1, days=8)
    kept = [e for i, e in enumerate(b.entries) if i not in notices]
    found = lines(kept)
    release = max(i for i, e in enumerate(kept) if e["kind"] == "release")
    assert any(
        "2 notice(s)" in ln and f"due since entry {release}" in ln and "7 days later" in ln
        for ln in found
    ), found


def test_a_notice_logged_more_than_a_week_late_fails() -> None:
    b, _, notices = released()
    later_requests(b, 1)
    entries = moved_to_end(b, notices, days=8)
    found = lines(entries)
    assert any("days after entry" in ln and "within 7 days" in ln for ln in found), found


def test_a_notice_nobody_owes_fails() -> None:
    b, _rid, notices = released()
    extra = dict(copy.deepcopy(b.entries[notices[0]]), subject="ab" * 32)
    found = lines([*b.entries, extra])
    assert any(f"entry {len(b.entries)} (notice): is not owed" in ln for ln in found), found


def test_a_notice_before_its_release_fails() -> None:
    b, _, notices = released()
    entries = copy.deepcopy(b.entries)
    first_release = min(i for i, e in enumerate(entries) if e["kind"] == "release")
    note = entries.pop(notices[0])
    entries.insert(first_release - 1, note)  # between the decision and the review
    assert not audit_in_memory(entries).ok


def test_a_second_notice_to_one_subject_does_not_pay_for_another() -> None:
    b, _, notices = released()
    entries = copy.deepcopy(b.entries)
    entries[notices[1]]["subject"] = entries[notices[0]]["subject"]
    found = lines(entries)
    assert any("tells the same subject" in ln for ln in found), found


def test_a_deferred_release_owes_nothing_until_lifted() -> None:
    b = LogBuilder().init()
    rid = b.request(
        "met-police", "whittington-health", "prevention_detection_of_crime",
        "dpa2018_sch2_p1_para2_crime", ["name"], [S()], offence="theft_act_1968_s1",
    )  # fmt: skip
    b.review(rid, "ig-whittington", defer=True)
    later_requests(b, 1, days=20)
    report = audit_in_memory(b.entries)
    assert report.ok and report.notices_owed == 0
    b.lift(rid, "ig-whittington")
    lift = next(i for i, e in enumerate(b.entries) if e.get("action") == "lifted")
    without_notices = b.entries[: lift + 1]
    report = audit_in_memory(without_notices)
    assert report.ok and report.notices_owed == 1
    assert audit_in_memory(b.entries).ok
