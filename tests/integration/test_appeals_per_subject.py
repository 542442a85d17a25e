"""Each subject of a release may appeal it once, whoever appealed before them.

A request about several people used to take one appeal: once one person had appealed a
release, everyone else it named was turned away. Now the service takes one appeal per
subject, decides them in the order lodged, and an overturn (the release found wrong)
decides every appeal still waiting with it; the auditor holds the log to the same rules
(no more subjects' appeals than subjects released, each decided in turn and in time), and
a subject's page shows their own appeal, never another's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_support import api, reviewable
from audit_serving import MemoryLog, audit_in_memory
from audit_support import released_pair
from cli_support import DOC, Cli, one_line_error, run
from fastapi.testclient import TestClient

from carewall.audit import AuditReport
from carewall.errors import ConflictError, InputError
from carewall.service import Service, tables

HOLDER_REVIEWER = "dpo-islington"
APPEALS = "appeals-islington"


def _people(n: int) -> list[dict[str, Any]]:
    return [
        {"ref": f"TEST-{k}-{k}", "is_child": False, "is_victim_or_witness": False} for k in range(n)
    ]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TestClient, Service]]:
    with api(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path) as (client, svc, tokens):
        client.headers.update(tokens.auth("requester"))  # the API's calls below are met-police's
        yield client, svc


def _released(svc: Service, n: int) -> tuple[str, list[str]]:
    rid = svc.submit(reviewable(subjects=_people(n))).id
    svc.review(rid, HOLDER_REVIEWER, True)
    found = [re.search(r"Your access code:\s+(\S+)", m["body"]) for m in svc.outbox()]
    codes = [f.group(1) for f, m in zip(found, svc.outbox(), strict=True) if f and rid in m["body"]]
    assert len(codes) == n
    return rid, codes


def _audit(svc: Service) -> AuditReport:
    report = audit_in_memory(list(svc.ledger.entries(0, svc.ledger.size())))
    assert report.ok, [f.message for f in report.findings]
    return report


def test_three_people_appeal_one_release_and_each_is_decided_in_turn(
    world: tuple[TestClient, Service],
) -> None:
    client, svc = world
    rid, codes = _released(svc, 3)
    for code, grounds in zip(codes, ("not me", "nor me", "nor me either"), strict=True):
        r = client.post(
            "/api/subject/appeal", json={"request": rid, "code": code, "grounds": grounds}
        )
        assert r.status_code == 200, r.text
    assert _audit(svc).appeals_open == 3
    record = svc.decide_appeal(rid, APPEALS, True)  # the first: the release stands
    assert (record.stage, record.outcome) == ("appealed", "released")
    assert [a.result for a in record.appeals] == ["upheld", None, None]
    assert record.appeal is not None and record.appeal.grounds == "nor me"  # next in turn
    assert _audit(svc).appeals_open == 2
    record = svc.decide_appeal(rid, APPEALS, False)  # the second: the release was wrong
    assert (record.stage, record.outcome) == ("overturned", "refused")
    assert [a.result for a in record.appeals] == ["upheld", "overturned", "overturned"]
    report = _audit(svc)
    assert report.appeals_open == 0


def test_the_last_appeal_upheld_ends_the_appeals(world: tuple[TestClient, Service]) -> None:
    _, svc = world
    rid, codes = _released(svc, 2)
    svc.subject_appeal(rid, codes[1], "not me")
    record = svc.decide_appeal(rid, APPEALS, True)
    assert (record.stage, record.outcome) == ("upheld", "released")
    record = svc.subject_appeal(rid, codes[0], "but me")  # the other may still appeal
    assert record.stage == "appealed"
    assert svc.decide_appeal(rid, APPEALS, True).stage == "upheld"
    _audit(svc)


def test_a_subject_cannot_appeal_twice_nor_after_the_release_is_found_wrong(
    world: tuple[TestClient, Service],
) -> None:
    _, svc = world
    rid, codes = _released(svc, 3)
    svc.subject_appeal(rid, codes[0], "not me")
    with pytest.raises(ConflictError):
        svc.subject_appeal(rid, codes[0], "really not me")
    svc.decide_appeal(rid, APPEALS, False)
    with pytest.raises(ConflictError):
        svc.subject_appeal(rid, codes[1], "nor me")  # nothing stands to appeal against
    _audit(svc)


def test_staff_lodging_for_unnamed_subjects_stop_at_the_subjects_released(
    world: tuple[TestClient, Service],
) -> None:
    """The CLI's ``--by subject`` without ``--subject``: each counts against the people
    released, so the log never holds more subjects' appeals than the auditor allows."""
    _, svc = world
    rid, _ = _released(svc, 2)
    svc.appeal(rid, "subject", "for the first")
    svc.appeal(rid, "subject", "for the second")
    with pytest.raises(ConflictError):
        svc.appeal(rid, "subject", "for a third who is not there")
    with pytest.raises(InputError) as named:
        svc.appeal(rid, "requester", "why", subject=0)
    assert named.value.field == "subject"
    _audit(svc)


def test_a_subjects_page_shows_their_own_appeal_and_not_anothers(
    world: tuple[TestClient, Service],
) -> None:
    client, svc = world
    rid, (first, second) = _released(svc, 2)
    svc.subject_appeal(rid, first, "my own grounds")
    mine = svc.subject_view(rid, first)
    theirs = svc.subject_view(rid, second)
    assert mine.appeal is not None and mine.appeal.grounds == "my own grounds"
    assert (mine.stage, mine.can_appeal) == ("appealed", False)
    # the second person sees the release as it stands, and may appeal it themselves
    assert (theirs.appeal, theirs.stage, theirs.can_appeal) == (None, "reviewed", True)
    page = client.post("/api/subject/view", json={"request": rid, "code": second})
    assert "my own grounds" not in page.text and '"appealed"' not in page.text
    svc.decide_appeal(rid, APPEALS, True)
    assert svc.subject_view(rid, second).stage == "reviewed"
    assert svc.subject_view(rid, first).stage == "upheld"


def test_the_release_found_wrong_shows_to_everyone_it_named(
    world: tuple[TestClient, Service],
) -> None:
    _, svc = world
    rid, (first, second) = _released(svc, 2)
    svc.subject_appeal(rid, first, "not me")
    svc.decide_appeal(rid, APPEALS, False)
    view = svc.subject_view(rid, second)
    assert (view.stage, view.outcome, view.appeal, view.can_appeal) == (
        "overturned",
        "refused",
        None,
        False,
    )


def test_the_requester_reads_that_subjects_appealed_but_never_why(
    world: tuple[TestClient, Service],
) -> None:
    client, svc = world
    rid, (first, second) = _released(svc, 2)
    svc.subject_appeal(rid, first, "SECRET-ONE")
    svc.subject_appeal(rid, second, "SECRET-TWO")
    assert [a.grounds for a in svc.get(rid).appeals] == ["SECRET-ONE", "SECRET-TWO"]
    r = client.get(f"/api/requests/{rid}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(a["by"], a["grounds"]) for a in body["appeals"]] == [("subject", None)] * 2
    assert body["appeal"]["grounds"] is None and "SECRET" not in r.text


# ----- the auditor, on hand-written logs -------------------------------------------------


def _messages(report: AuditReport) -> list[str]:
    return [f.message for f in report.findings]


def test_the_auditor_takes_one_appeal_per_subject_released() -> None:
    b, rid = released_pair()
    b.appeal(rid, "subject")
    b.appeal(rid, "subject")
    b.decide_appeal(rid, "subject", "caldicott-whittington", uphold=True)
    b.decide_appeal(rid, "subject", "caldicott-whittington", uphold=True)
    report = audit_in_memory(b.entries)
    assert report.ok, _messages(report)


def test_a_third_subjects_appeal_of_a_two_person_release_is_a_finding() -> None:
    b, rid = released_pair()
    for _ in range(3):
        b.appeal(rid, "subject")
    report = audit_in_memory(b.entries)
    assert any("than it released subjects (2)" in m for m in _messages(report)), _messages(report)


def test_a_subjects_appeal_after_the_release_was_found_wrong_is_a_finding() -> None:
    b, rid = released_pair()
    b.appeal(rid, "subject")
    b.decide_appeal(rid, "subject", "caldicott-whittington", uphold=False)
    b.appeal(rid, "subject")
    report = audit_in_memory(b.entries)
    assert any("a subject may appeal a release" in m for m in _messages(report))


def test_one_decision_too_many_is_a_finding() -> None:
    b, rid = released_pair()
    b.appeal(rid, "subject")
    b.decide_appeal(rid, "subject", "caldicott-whittington", uphold=True)
    b.decide_appeal(rid, "subject", "caldicott-whittington", uphold=True)
    report = audit_in_memory(b.entries)
    assert any("that was not lodged" in m for m in _messages(report)), _messages(report)


def test_a_waiting_appeal_left_undecided_is_found_and_survives_a_saved_state() -> None:
    """The second appeal waits behind the first; the first is decided in time, the second
    never. A run from the state saved while both waited still finds it."""
    from datetime import timedelta

    b, rid = released_pair()
    b.appeal(rid, "subject")
    b.appeal(rid, "subject")
    second = len(b.entries) - 1
    first_run, state = MemoryLog(b.entries).audit()
    assert first_run.ok and first_run.appeals_open == 2
    b.clock += timedelta(days=10)
    b.decide_appeal(rid, "subject", "caldicott-whittington", uphold=True)
    b.clock += timedelta(days=200)
    b.organisation("late-council", "Late Borough Council", "local_authority")
    report, _ = MemoryLog(b.entries).audit(state)
    assert any(f.index == second or f"entry {second}" in f.message for f in report.findings), (
        _messages(report)
    )


# ----- the command line ------------------------------------------------------------------


def test_the_cli_lodges_for_a_named_subject_once(tmp_path: Path) -> None:
    cli = Cli.init(tmp_path)
    two = [dict(DOC["subjects"][0], ref=f"943476591{k}") for k in (0, 1)]
    rid = cli.released(subjects=two)
    appeal = ["appeal", rid, "--by", "subject", "--grounds", "not me", *cli.signing]
    first = run([*appeal, "--subject", "1"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["stage"] == "appealed"
    again = run([*appeal, "--subject", "1"])
    assert again.exit_code == 2 and "can no longer be appealed" in again.stderr
    other = run([*appeal, "--subject", "0"])  # the other person, behind the first
    assert other.exit_code == 0, other.output
    wrong = run(
        ["appeal", rid, "--by", "requester", "--grounds", "x", "--subject", "0", *cli.signing]
    )
    one_line_error(wrong, "subject")
    svc = cli.service()
    try:
        assert [a.by for a in svc.get(rid).appeals] == ["subject", "subject"]
        _audit(svc)
    finally:
        svc.close()


def test_an_appealed_record_with_no_appeal_waiting_is_a_clear_conflict(
    world: tuple[TestClient, Service],
) -> None:
    """A careless repair by hand leaves a request 'appealed' with its appeal row gone:
    deciding it says so (409, naming the request), never a server error."""
    _, svc = world
    rid, (code,) = _released(svc, 1)
    svc.subject_appeal(rid, code, "not me")
    with svc.store.write() as conn:
        conn.execute(sa.delete(tables.appeals).where(tables.appeals.c.request_id == rid))
    with pytest.raises(ConflictError) as none:
        svc.decide_appeal(rid, APPEALS, True)
    assert none.value.field == "id"
    with svc.store.write() as conn:  # put it back, so the fixture's closing audit holds
        conn.execute(
            sa.insert(tables.appeals).values(
                request_id=rid, by="subject", grounds="not me", prior_outcome="released",
                lodged_at=svc.get(rid).events[-1].time, subject=0,
            )
        )  # fmt: skip


def test_a_subject_may_appeal_a_release_made_on_the_requesters_appeal(
    world: tuple[TestClient, Service],
) -> None:
    """Refused at review, released when an appeal reviewer overturned the requester's
    appeal: the person it names may still appeal that release, and their page says an
    appeal reviewer decided to share it."""
    _, svc = world
    rid = svc.submit(reviewable(subjects=_people(1))).id
    svc.review(rid, HOLDER_REVIEWER, False)
    svc.appeal(rid, "requester", "the refusal was wrong")
    record = svc.decide_appeal(rid, APPEALS, False)
    assert (record.stage, record.outcome) == ("overturned", "released")
    (code,) = [
        f.group(1)
        for m in svc.outbox()
        if rid in m["body"] and (f := re.search(r"Your access code:\s+(\S+)", m["body"]))
    ]
    view = svc.subject_view(rid, code)
    assert view.released_on_appeal and view.can_appeal
    assert view.appeal is not None and view.appeal.grounds is None  # the requester's
    record = svc.subject_appeal(rid, code, "I never agreed to this")
    assert record.stage == "appealed"
    assert [(a.by, a.result) for a in record.appeals] == [
        ("requester", "overturned"),
        ("subject", None),
    ]
    view = svc.subject_view(rid, code)
    assert view.released_on_appeal and view.appeal is not None
    assert view.appeal.grounds == "I never agreed to this" and view.stage == "appealed"
    _audit(svc)
