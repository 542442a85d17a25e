"""Deferred notices (contract §3 "Deferral", §6 ``deferral``): CLI and HTTP.

The requester asks (``prejudice: true``); the holder's reviewer decides, with a review date
at most 90 days ahead; due deferrals are listed until a reviewer at the holder lifts or
renews each. Every decision is a ``deferral`` entry; a notice is logged (and delivered,
exactly once) only when it is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_support import HOLDER, REQUESTER, Tokens, access_code, api, init_service, reviewable
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from carewall.api.admin import issue_token
from carewall.cli import main
from carewall.service import Service

RELEASE = "dpo-islington"
SUBJECTS = [
    {"ref": "SUBJ-0001", "is_child": False, "is_victim_or_witness": False},
    {"ref": "SUBJ-0002", "is_child": False, "is_victim_or_witness": False},
]


def deferrable(**changes: Any) -> dict[str, Any]:
    """A police request for two suspects whose notices the requester asks to defer."""
    return reviewable(**{"subjects": SUBJECTS, "prejudice": True, **changes})


def logged(svc: Service, start: int) -> list[dict[str, Any]]:
    return [json.loads(e) for e in svc.ledger.entries(start, svc.ledger.size())]


def today() -> date:
    return datetime.now(UTC).date()


def days(n: int) -> str:
    return (today() + timedelta(days=n)).isoformat()


def entry_date(entry: dict[str, Any]) -> date:
    return date.fromisoformat(entry["time"][:10])


class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.url = f"sqlite:///{tmp_path / 'cw.db'}"
        self.svc = init_service(self.url, tmp_path)
        self.db = ["--db", self.url, "--key", str(tmp_path / "log.key")]

    def __call__(self, *args: str) -> Result:
        res = CliRunner().invoke(main, [*args, *self.db], catch_exceptions=False)
        assert "Traceback" not in res.output
        return res

    def list(self, *args: str) -> Result:
        # `deferral list` reads only: no signing key
        return CliRunner().invoke(main, ["deferral", "list", *args, "--db", self.url])


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    c = Cli(tmp_path)
    try:
        yield c
    finally:
        c.svc.close()


def review(client: TestClient, tok: Tokens, rid: str, **body: Any) -> Any:
    return client.post(
        f"/api/requests/{rid}/review", json={"release": True, **body}, headers=tok.auth("release")
    )


def change(client: TestClient, tok: Tokens, rid: str, who: str = "release", **body: Any) -> Any:
    return client.post(f"/api/requests/{rid}/deferral", json=body, headers=tok.auth(who))


# ----- the reviewer's decision at release ------------------------------------------------------


def test_prejudice_defers_the_notices_for_the_default_period(
    served: tuple[TestClient, Service, Tokens],
) -> None:
    client, svc, tok = served
    rid = svc.submit(deferrable()).id
    size = svc.ledger.size()
    r = review(client, tok, rid)
    assert r.status_code == 200, r.text
    log = logged(svc, size)
    assert [e["kind"] for e in log] == ["review", "release", "deferral"]  # no notice entries
    deferral = log[-1]
    until = (entry_date(deferral) + timedelta(days=90)).isoformat()
    assert deferral == {
        "v": 1,
        "kind": "deferral",
        "time": deferral["time"],
        "request": rid,
        "action": "deferred",
        "reviewer": RELEASE,
        "subjects": 2,
        "review_date": until,
    }
    assert [(n["status"], n["review_date"]) for n in r.json()["notices"]] == [
        ("deferred", until)
    ] * 2
    assert svc.outbox() == []  # not delivered
    assert svc.deliver_pending() == 0 and svc.outbox() == []


def test_prejudice_defers_through_the_cli(cli: Cli) -> None:
    rid = cli.svc.submit(deferrable()).id
    size = cli.svc.ledger.size()
    res = cli("review", rid, "--reviewer", RELEASE, "--release")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    (deferral,) = [e for e in logged(cli.svc, size) if e["kind"] == "deferral"]
    assert out["deferred_until"] == deferral["review_date"]
    assert f"notices: 2 deferred until {deferral['review_date']}" in res.stderr
    assert "notice" not in [e["kind"] for e in logged(cli.svc, size)]
    assert cli.svc.outbox() == []


@pytest.mark.parametrize("via", ["cli", "http"])
def test_no_defer_sends_the_notices(via: str, tmp_path: Path) -> None:
    if via == "cli":
        c = Cli(tmp_path)
        svc = c.svc
        rid = svc.submit(deferrable()).id
        size = svc.ledger.size()
        res = c("review", rid, "--reviewer", RELEASE, "--release", "--no-defer")
        assert res.exit_code == 0, res.output
        assert "notices: 2 sent, none deferred" in res.stderr
        check_sent(svc, rid, size)
        svc.close()
        return
    with api(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path) as (client, svc, tok):
        rid = svc.submit(deferrable()).id
        size = svc.ledger.size()
        assert review(client, tok, rid, no_defer=True).status_code == 200
        check_sent(svc, rid, size)


def check_sent(svc: Service, rid: str, size: int) -> None:
    log = logged(svc, size)
    assert [e["kind"] for e in log] == ["review", "release", "notice", "notice"]
    rec = svc.get(rid)
    assert {e["subject"] for e in log[2:]} == {s.commitment for s in rec.subjects}
    assert [n.status for n in rec.notices] == ["sent", "sent"]
    assert len(svc.outbox()) == 2


def test_the_reviewer_chooses_the_review_date(served: tuple[TestClient, Service, Tokens]) -> None:
    client, svc, tok = served
    svc.clock = lambda: datetime(2036, 12, 1, 9, 30, tzinfo=UTC)
    for until in ("2036-12-02", "2037-03-01"):  # tomorrow, and 90 days ahead
        rid = svc.submit(deferrable()).id
        size = svc.ledger.size()
        assert review(client, tok, rid, defer_until=until).status_code == 200
        assert logged(svc, size)[-1]["review_date"] == until
    # a review date given without a request to defer still defers: the reviewer decides
    rid = svc.submit(deferrable(prejudice=False)).id
    size = svc.ledger.size()
    assert review(client, tok, rid, defer_until="2036-12-24").status_code == 200
    assert [e["kind"] for e in logged(svc, size)][-1] == "deferral"


BAD_DATES = [
    ("in the past", -1),
    ("today", 0),
    ("91 days ahead", 91),
    ("not a real date", "2027-02-30"),
    ("not a date", "next week"),
    ("a date and time", "2027-01-01T00:00:00Z"),
    ("non-ASCII digits", "２０２７-01-01"),
]


@pytest.mark.parametrize("when", [b[1] for b in BAD_DATES], ids=[b[0] for b in BAD_DATES])
@pytest.mark.parametrize("via", ["cli", "http"])
def test_a_bad_review_date_is_refused(via: str, when: int | str, tmp_path: Path) -> None:
    until = days(when) if isinstance(when, int) else when
    if via == "cli":
        c = Cli(tmp_path)
        rid = c.svc.submit(deferrable()).id
        size = c.svc.ledger.size()
        res = c("review", rid, "--reviewer", RELEASE, "--release", "--defer-until", until)
        assert res.exit_code == 2 and res.stderr.startswith("error: --defer-until: "), res.output
        assert logged(c.svc, size) == [] and c.svc.get(rid).stage == "decided"
        c.svc.close()
        return
    with api(f"sqlite:///{tmp_path / 'cw.db'}", tmp_path) as (client, svc, tok):
        rid = svc.submit(deferrable()).id
        size = svc.ledger.size()
        r = review(client, tok, rid, defer_until=until)
        assert r.status_code == 422 and r.json()["field"] == "defer_until", r.text
        assert logged(svc, size) == [] and svc.get(rid).stage == "decided"


def test_defer_and_no_defer_together_are_refused(
    served: tuple[TestClient, Service, Tokens],
) -> None:
    client, svc, tok = served
    rid = svc.submit(deferrable()).id
    r = review(client, tok, rid, defer_until=days(10), no_defer=True)
    assert r.status_code == 422 and r.json()["field"] == "defer_until"


# ----- listing the deferrals due ---------------------------------------------------------------


def test_due_deferrals_are_listed_to_the_holder_only(
    served: tuple[TestClient, Service, Tokens],
) -> None:
    client, svc, tok = served
    svc.clock = lambda: datetime(2036, 12, 1, 9, 0, tzinfo=UTC)
    rid = svc.submit(deferrable()).id
    assert review(client, tok, rid, defer_until="2036-12-15").status_code == 200
    row = {
        "request_id": rid,
        "holder": HOLDER,
        "requester": REQUESTER,
        "review_date": "2036-12-15",
        "decided_by": RELEASE,
        "notices": 2,
    }
    for who in ("release", "appeal", "admin"):
        r = client.get("/api/deferrals", headers=tok.auth(who))
        assert r.status_code == 200 and r.json() == [row], (who, r.text)
        assert "SUBJ-" not in r.text and "Smith" not in r.text  # no personal data
    # other organisations see none of the holder's deferrals; a requester may not ask
    other_admin = issue_token(svc, "whittington-health", "admin").secret
    r = client.get("/api/deferrals", headers={"Authorization": f"Bearer {other_admin}"})
    assert r.json() == []
    assert client.get("/api/deferrals", headers=tok.auth("other_release")).json() == []
    assert client.get("/api/deferrals", headers=tok.auth("requester")).status_code == 403
    assert client.get("/api/deferrals").status_code == 401

    due = "/api/deferrals?due="
    assert client.get(due + "true", headers=tok.auth("release")).json() == []
    assert client.get(due + "2036-12-14", headers=tok.auth("release")).json() == []
    assert client.get(due + "2036-12-15", headers=tok.auth("release")).json() == [row]
    svc.clock = lambda: datetime(2036, 12, 15, 8, 0, tzinfo=UTC)  # the review date comes
    assert client.get(due + "true", headers=tok.auth("release")).json() == [row]
    for bad in ("2026-02-30", "soon", "15/12/2026"):
        r = client.get(due + bad, headers=tok.auth("release"))
        assert r.status_code == 422 and r.json()["field"] == "due", r.text


def test_due_deferrals_are_listed_by_the_cli(cli: Cli) -> None:
    rid = cli.svc.submit(deferrable()).id
    until = days(20)
    assert (
        cli("review", rid, "--reviewer", RELEASE, "--release", "--defer-until", until).exit_code
        == 0
    )
    res = cli.list("--json")
    (row,) = [json.loads(line) for line in res.stdout.splitlines()]
    assert (row["request_id"], row["review_date"], row["notices"]) == (rid, until, 2)
    assert row["decided_by"] == RELEASE and row["holder"] == HOLDER
    assert cli.list("--due", "--json").stdout == ""  # not due today
    assert cli.list("--due", days(19), "--json").stdout == ""
    assert json.loads(cli.list("--due", until, "--json").stdout)["request_id"] == rid
    assert cli.list("--holder", "whittington-health", "--json").stdout == ""
    table = cli.list()
    assert table.exit_code == 0 and "1 deferred requests" in table.stdout
    assert rid in table.stdout  # the id is never truncated: it is copied into `lift`
    assert "SUBJ-" not in table.stdout and "Smith" not in table.stdout
    bad = cli.list("--due", "2027-02-30")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --due: ")


# ----- lifting and renewing --------------------------------------------------------------------


def test_only_a_release_reviewer_at_the_holder_lifts(
    served: tuple[TestClient, Service, Tokens],
) -> None:
    client, svc, tok = served
    rid = svc.submit(deferrable()).id
    assert review(client, tok, rid).status_code == 200
    size = svc.ledger.size()
    for who in ("other_release", "requester", "other_requester", "appeal", "admin"):
        r = change(client, tok, rid, who, action="lift")
        # another holder's reviewer: the 404 of a missing request; other roles: 403
        assert r.status_code == (404 if who == "other_release" else 403), (who, r.text)
    # the reviewer is the token's, never one named in the body
    r = change(client, tok, rid, action="lift", reviewer="ig-whittington")
    assert r.status_code == 422 and r.json()["field"] == "reviewer"
    # an unknown id answers as one held elsewhere: ids reveal nothing
    r = change(client, tok, "r0000000000000000000", action="lift")
    assert r.status_code == 404
    assert logged(svc, size) == [] and svc.outbox() == []
    assert [d.request_id for d in svc.deferrals()] == [rid]


def test_a_reviewer_at_another_holder_cannot_lift_through_the_cli(cli: Cli) -> None:
    rid = cli.svc.submit(deferrable()).id
    assert cli("review", rid, "--reviewer", RELEASE, "--release").exit_code == 0
    size = cli.svc.ledger.size()
    res = cli("deferral", "lift", rid, "--reviewer", "ig-whittington")
    assert res.exit_code == 2 and res.stderr.startswith("error: reviewer: "), res.output
    res = cli("deferral", "lift", rid, "--reviewer", "appeals-islington")  # no release role
    assert res.exit_code == 2 and "release_reviewer" in res.stderr
    assert logged(cli.svc, size) == [] and cli.svc.outbox() == []


def test_lifting_what_is_not_deferred_is_a_conflict(
    served: tuple[TestClient, Service, Tokens],
) -> None:
    client, svc, tok = served
    sent = svc.submit(deferrable()).id
    assert review(client, tok, sent, no_defer=True).status_code == 200
    pending = svc.submit(deferrable()).id  # not yet reviewed
    size = svc.ledger.size()
    for rid in (sent, pending):
        r = change(client, tok, rid, action="lift")
        assert r.status_code == 409 and "not deferred" in r.json()["message"]
        r = change(client, tok, rid, action="renew", until=days(10))
        assert r.status_code == 409
    assert logged(svc, size) == []


BAD_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown action", {"action": "cancel"}, "action"),
    ("no action", {}, "action"),
    ("renew without a date", {"action": "renew"}, "until"),
    ("lift with a date", {"action": "lift", "until": "2026-12-20"}, "until"),
    ("renew to a non-date", {"action": "renew", "until": "later"}, "until"),
    ("renew into the past", {"action": "renew", "until": "2020-01-01"}, "until"),
    ("renew beyond 90 days", {"action": "renew", "until": "2099-01-01"}, "until"),
    ("unknown field", {"action": "lift", "notify": False}, "notify"),
]


@pytest.mark.parametrize(
    ("body", "where"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES]
)
def test_a_malformed_deferral_body_is_refused(
    served: tuple[TestClient, Service, Tokens], body: dict[str, Any], where: str
) -> None:
    client, svc, tok = served
    rid = svc.submit(deferrable()).id
    assert review(client, tok, rid).status_code == 200
    size = svc.ledger.size()
    r = client.post(f"/api/requests/{rid}/deferral", json=body, headers=tok.auth("release"))
    assert r.status_code == 422 and r.json()["field"] == where, r.text
    assert logged(svc, size) == []


def test_renew_then_lift_over_http(served: tuple[TestClient, Service, Tokens]) -> None:
    client, svc, tok = served
    rid = svc.submit(deferrable()).id
    size = svc.ledger.size()
    assert review(client, tok, rid).status_code == 200
    renewed = days(45)
    r = change(client, tok, rid, action="renew", until=renewed)
    assert r.status_code == 200, r.text
    assert [n["review_date"] for n in r.json()["notices"]] == [renewed, renewed]
    assert [d.review_date for d in svc.deferrals()] == [renewed]
    r = change(client, tok, rid, action="lift")
    assert r.status_code == 200 and [n["status"] for n in r.json()["notices"]] == ["sent"] * 2
    check_renewed_then_lifted(svc, rid, size, renewed)
    # a lifted notice is delivered exactly once
    assert change(client, tok, rid, action="lift").status_code == 409
    assert svc.deliver_pending() == 0
    assert len(svc.outbox()) == 2
    code = access_code(svc, rid)
    view = client.post("/api/subject/view", json={"request": rid, "code": code})
    assert view.status_code == 200 and view.json()["notice_status"] == "sent"


def test_renew_then_lift_through_the_cli(cli: Cli) -> None:
    rid = cli.svc.submit(deferrable()).id
    size = cli.svc.ledger.size()
    assert cli("review", rid, "--reviewer", RELEASE, "--release").exit_code == 0
    bad = cli("deferral", "renew", rid, "--reviewer", RELEASE, "--until", days(91))
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --until: "), bad.output
    renewed = days(30)
    res = cli("deferral", "renew", rid, "--reviewer", RELEASE, "--until", renewed)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["review_date"] == renewed
    res = cli("deferral", "lift", rid, "--reviewer", RELEASE)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["notices_sent"] == 2 and "notices: 2 sent" in res.stderr
    check_renewed_then_lifted(cli.svc, rid, size, renewed)
    again = cli("deferral", "lift", rid, "--reviewer", RELEASE)
    assert again.exit_code == 2 and "not deferred" in again.stderr
    assert cli.svc.deliver_pending() == 0 and len(cli.svc.outbox()) == 2
    assert cli.list("--json").stdout == ""


def check_renewed_then_lifted(svc: Service, rid: str, size: int, renewed: str) -> None:
    log = logged(svc, size)
    deferrals = [e for e in log if e["kind"] == "deferral"]
    assert [(e["action"], e["subjects"], e["reviewer"]) for e in deferrals] == [
        ("deferred", 2, RELEASE),
        ("renewed", 2, RELEASE),
        ("lifted", 2, RELEASE),
    ]
    assert deferrals[1]["review_date"] == renewed and deferrals[2]["review_date"] is None
    # the notices are logged once, after the lift, one per subject
    kinds = [e["kind"] for e in log]
    assert kinds[-3:] == ["deferral", "notice", "notice"] and kinds.count("notice") == 2
    rec = svc.get(rid)
    assert {e["subject"] for e in log[-2:]} == {s.commitment for s in rec.subjects}
    assert all(n.status == "sent" and n.delivered_at for n in rec.notices)
    assert sorted(n.log_index for n in rec.notices) == [len(log) + size - 2, len(log) + size - 1]
    assert svc.deferrals() == []
