"""Long work off the request path, and notices that survive their workers (issue 13, 2-3).

A release is recorded at once with a job that delivers its notices; a small job is run by
the caller, a large one by a background worker. Each job is claimed once across threads
and processes, on SQLite and PostgreSQL; a dead worker's job and claims are taken over
when its lease runs out; a notice sent again is the same letter with the same code; the
progress shows in the review reply and in ``carewall jobs``.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from api_support import Tokens, example
from cli_support import one_line_error, run, wide_console
from fastapi.testclient import TestClient
from logaudit import assert_log_audits

from carewall.cli.demo_year import fill_year
from carewall.errors import InputError, UnavailableError
from carewall.service import Service
from carewall.service import tables as t
from carewall.service.codes import code_maker
from carewall.service.delivery import Delivery
from carewall.service.jobs import drain, record_queued, startup_sweep, sweep_once
from carewall.service.jobstore import jobs as jobs_table
from carewall.service.jobstore import latest_for, list_jobs
from carewall.service.notices import Notice

REVIEWER = "dpo-islington"
DEADLINE = 180.0


def many(n: int) -> dict[str, object]:
    doc = example(categories=["name", "address"])
    doc["subjects"] = [
        {"ref": f"S{i:06d}", "is_child": False, "is_victim_or_witness": False}
        for i in range(1, n + 1)
    ]
    return doc


def code_in(body: str) -> str:
    found = re.search(r"Your access code:\s+(\S+)", body)
    assert found is not None
    return found.group(1)


class Recording:
    """A channel keeping no copy (as SMTP): records what it sends; may die on one send."""

    name = "smtp"

    def __init__(self, die_after: int | None = None, fail_on: int | None = None) -> None:
        self.sent: list[Notice] = []
        self.die_after = die_after
        self.fail_on = fail_on
        self._lock = threading.Lock()

    def send(self, notice: Notice) -> None:
        with self._lock:
            if self.fail_on is not None and len(self.sent) == self.fail_on:
                self.fail_on = None
                raise RuntimeError("the channel broke")
            self.sent.append(notice)
            if self.die_after is not None and len(self.sent) == self.die_after:
                self.die_after = None
                raise Died  # the letter left; the worker died before marking it


class Died(BaseException):
    """A worker's death, as far as the code after the send can tell."""


@pytest.fixture
def svc(db_url: str, tmp_path: Path) -> Iterator[Service]:
    service = Service.init(db_url, None, "jobs.test/log", tmp_path / "log.key")
    try:
        yield service
    finally:
        service.close()


@pytest.fixture
def sqlite_svc(sqlite_url: str, tmp_path: Path) -> Iterator[Service]:
    """For what is the same on both databases, or runs on SQLite only (the demo)."""
    service = Service.init(sqlite_url, None, "jobs.test/log", tmp_path / "log.key")
    try:
        yield service
    finally:
        service.close()


def other(db_url: str, tmp_path: Path) -> Service:
    """Another worker on the same database (another process, as far as the data goes)."""
    return Service.open(db_url, tmp_path / "log.key")


def assert_once(svc: Service, request_id: str) -> None:
    """Every notice delivered, one outbox letter each, whose code opens its view."""
    notices = svc.notices(request_id)
    assert notices and all(n.delivered_at for n in notices)
    letters = [m for m in svc.outbox() if f"Request ID:        {request_id}" in m["body"]]
    assert Counter(m["notice_id"] for m in letters) == Counter({n.id: 1 for n in notices})
    position = {n.id: n.subject for n in notices}
    for m in letters:
        assert svc.subject_view(request_id, code_in(m["body"])).subject == position[m["notice_id"]]


def queued_release(svc: Service, n: int) -> str:
    """A release of ``n`` people whose notices are written but whose job is queued for
    delivery, not run (as a bulk loader leaves it)."""
    svc.auto_publish = False
    rid = svc.submit(many(n)).id
    svc.review(rid, REVIEWER, True)
    assert svc.notices(rid) == []  # the job writes them
    assert record_queued(svc) == 1
    svc.publish_pending()
    svc.auto_publish = True
    return rid


def test_a_large_release_is_left_to_a_worker_which_reports_progress(
    svc: Service, db_url: str, tmp_path: Path
) -> None:
    svc.job_policy.background = True  # as under the server: large jobs go to the worker
    svc.job_policy.inline_limit = 5
    small = svc.submit(many(5)).id
    rec = svc.review(small, REVIEWER, True)
    assert all(n.delivered_at for n in rec.notices)  # small: sent before the call returned
    big = svc.submit(many(12)).id
    rec = svc.review(big, REVIEWER, True)
    # recorded at once; each subject's notice (row and log entry) is the worker's to write
    assert rec.outcome == "released" and rec.notices == []
    assert sum(len(g.subjects) for g in rec.release.groups) == 12  # type: ignore[union-attr]
    job = latest_for(svc.store, big)
    assert job is not None and (job.state, job.total, job.done) == ("queued", 12, 0)
    assert job.stage == "record"

    worker = other(db_url, tmp_path)
    seen: list[int] = []
    try:
        ran = drain(worker, on_progress=lambda j, sent: seen.append(sent))
    finally:
        worker.close()
    assert (ran.jobs, ran.sent) == (1, 12) and seen[-1] == 12
    assert len(svc.notices(big)) == 12
    done = latest_for(svc.store, big)
    assert done is not None and (done.state, done.done, done.attempts) == ("done", 12, 1)
    assert done.finished_at is not None and done.error is None
    assert_once(svc, big)
    assert_once(svc, small)


_RUN_JOBS = [sys.executable, "-c", "from carewall.cli import main; main()", "jobs", "run"]


def test_each_job_is_claimed_once_across_threads_and_processes(
    svc: Service, db_url: str, tmp_path: Path
) -> None:
    rids = [queued_release(svc, 7) for _ in range(6)]
    assert len(list_jobs(svc.store, state="queued")) == 6
    key = str(tmp_path / "log.key")
    procs = [
        subprocess.Popen(
            [*_RUN_JOBS, "--db", db_url, "--key", key],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    worker = other(db_url, tmp_path)
    try:
        in_thread = drain(worker)
    finally:
        worker.close()
    outs = [p.communicate(timeout=DEADLINE) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    counts = [re.search(r"jobs: (\d+) run, (\d+) notice", out) for out, _ in outs]
    assert all(counts), outs
    ran = [(int(m.group(1)), int(m.group(2))) for m in counts if m]
    assert sum(j for j, _ in ran) + in_thread.jobs == 6
    assert sum(s for _, s in ran) + in_thread.sent == 42
    for job in list_jobs(svc.store, state="all"):
        assert (job.state, job.done, job.total, job.attempts) == ("done", 7, 7, 1)
    for rid in rids:
        assert_once(svc, rid)


def test_a_dead_workers_job_and_claims_are_taken_over_after_the_lease(
    svc: Service, db_url: str, tmp_path: Path
) -> None:
    rid = queued_release(svc, 9)
    start = datetime.now(UTC)
    dead = other(db_url, tmp_path)
    try:
        # a worker claimed the job and four notices, then died
        with dead.store.write() as conn:
            conn.execute(
                jobs_table.update().values(
                    state="running",
                    worker="dead:1:00",
                    heartbeat_at=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    attempts=1,
                )
            )
        ids = [n.id for n in dead.notices(rid)][:4]
        assert Delivery(dead).claim(ids) == ids
    finally:
        dead.close()
    alive = other(db_url, tmp_path)
    try:
        alive.clock = lambda: start + timedelta(seconds=30)  # within the lease: hands off
        assert sweep_once(alive).sent == 0
        assert undelivered(svc, rid) == 9
        alive.clock = lambda: start + timedelta(minutes=2)  # the lease has run out
        done = sweep_once(alive)
        assert (done.freed, done.jobs, done.sent) == (4, 1, 9)
    finally:
        alive.close()
    job = latest_for(svc.store, rid)
    assert job is not None and (job.state, job.done, job.attempts) == ("done", 9, 2)
    assert_once(svc, rid)


def undelivered(svc: Service, rid: str) -> int:
    return sum(1 for n in svc.notices(rid) if not n.delivered_at)


def test_a_letter_sent_again_after_its_worker_died_is_the_same_letter(
    svc: Service, db_url: str, tmp_path: Path
) -> None:
    """A mail channel took the second letter, then the worker died before marking it: the
    next worker sends the same letter, byte for byte, and the code in it works."""
    rid = queued_release(svc, 3)
    svc.channel = Recording(die_after=2)
    with pytest.raises(Died):
        svc.deliver_pending()
    first = svc.channel.sent
    assert len(first) == 2 and undelivered(svc, rid) == 2
    later = other(db_url, tmp_path)
    try:
        again = Recording()
        later.channel = again
        later.clock = lambda: datetime.now(UTC) + timedelta(minutes=2)
        assert sweep_once(later).sent == 2  # the died-on one again, and the third
    finally:
        later.close()
    resent = next(n for n in again.sent if n.id == first[1].id)
    assert (resent.subject, resent.body) == (first[1].subject, first[1].body)
    for n in [*first, *again.sent]:
        assert svc.subject_view(rid, code_in(n.body)).request_id == rid
    assert Counter(n.id for n in [*first, *again.sent])[first[1].id] == 2
    assert all(n.delivered_at and n.channel == "smtp" for n in svc.notices(rid))


def test_every_worker_derives_the_same_code_and_no_table_holds_it(
    svc: Service, db_url: str, tmp_path: Path
) -> None:
    rid = svc.submit(many(2)).id
    svc.review(rid, REVIEWER, True)
    letters = {m["notice_id"]: code_in(m["body"]) for m in svc.outbox()}
    later = other(db_url, tmp_path)
    try:
        derived = code_maker(later.ledger)
        for n in svc.notices(rid):
            code = derived.code(rid, n.subject)
            assert code == letters[n.id] and len(code) == 22
    finally:
        later.close()
    with svc.store.read() as conn:
        for table in t.metadata.sorted_tables:
            if table.name == "svc_outbox" or not table.name.startswith("svc_"):
                continue
            text = json.dumps([list(r) for r in conn.execute(sa.select(table))], default=str)
            for code in letters.values():
                assert code not in text, table.name
            if table.name == "svc_subjects":
                for code in letters.values():
                    assert hashlib.sha256(code.encode()).hexdigest() in text
        text = json.dumps(
            [list(r) for r in conn.exec_driver_sql("SELECT * FROM ledger_entries")], default=str
        )
    assert not any(code in text for code in letters.values())


def test_delivery_needs_the_log_key(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    rid = queued_release(svc, 1)
    url = svc.store.url
    keyless = Service.open(url)  # <db>.key does not exist: opened without the key
    try:
        with pytest.raises(UnavailableError) as e:
            keyless.deliver_pending()
        assert e.value.field == "--key"
    finally:
        keyless.close()
    assert undelivered(svc, rid) == 1 and not svc.notices(rid)[0].claimed_at
    assert svc.deliver_pending() == 1


def test_a_failed_job_is_given_back_and_waits_before_it_is_tried_again(
    svc: Service,
) -> None:
    rid = queued_release(svc, 2)
    svc.channel = Recording(fail_on=0)
    with pytest.raises(RuntimeError):
        drain(svc)
    job = latest_for(svc.store, rid)
    assert job is not None and (job.state, job.error, job.attempts) == ("queued", "RuntimeError", 1)
    assert sweep_once(svc).jobs == 0  # it waits out the lease before another try
    assert drain(svc).sent == 1  # asked for now: the one never begun goes
    # the notice in hand when the channel broke may have left: it waits for its claim to
    # run out, and then goes (the same letter again, were it mailed)
    svc.clock = lambda: datetime.now(UTC) + timedelta(minutes=5)
    assert sweep_once(svc).sent == 1
    job = latest_for(svc.store, rid)
    assert job is not None and (job.state, job.done) == ("done", 2)


def test_startup_sends_a_small_backlog_and_leaves_a_large_one(svc: Service) -> None:
    rid = queued_release(svc, 5)
    svc.job_policy.inline_limit = 4
    done, left = startup_sweep(svc)
    assert (done.sent, left) == (0, 5) and undelivered(svc, rid) == 5
    svc.job_policy.inline_limit = 5
    done, left = startup_sweep(svc)
    assert (done.sent, left) == (5, 0)
    job = latest_for(svc.store, rid)
    assert job is not None and job.state == "done"  # closed by the sweep that finished it


def test_the_review_reply_names_the_job(served: tuple[TestClient, Service, Tokens]) -> None:
    client, service, tok = served

    def release(n: int) -> dict[str, object]:
        rid = client.post("/api/requests", json=many(n), headers=tok.auth("requester"))
        assert rid.status_code == 201, rid.text
        r = client.post(
            f"/api/requests/{rid.json()['id']}/review",
            json={"release": True},
            headers=tok.auth("release"),
        )
        assert r.status_code == 200, r.text
        body: dict[str, object] = r.json()
        return body

    small = release(1)
    assert small["job"] is not None and isinstance(small["job"], dict)
    assert {k: small["job"][k] for k in ("state", "total", "done")} == {
        "state": "done",
        "total": 1,
        "done": 1,
    }
    service.job_policy.inline_limit = 2  # anything larger goes to the background worker
    big = release(6)
    job = big["job"]
    assert isinstance(job, dict) and job["total"] == 6 and job["kind"] == "notices"
    assert job["state"] in ("queued", "running", "done")
    rid = str(big["id"])
    deadline = time.monotonic() + DEADLINE
    while (latest := latest_for(service.store, rid)) is None or latest.state != "done":
        assert time.monotonic() < deadline, latest
        time.sleep(0.1)
    record = client.get(f"/api/requests/{rid}/record", headers=tok.auth("release"))
    assert all(n["delivered_at"] for n in record.json()["notices"])
    refused = client.post("/api/requests", json=many(1), headers=tok.auth("requester")).json()
    r = client.post(
        f"/api/requests/{refused['id']}/review",
        json={"release": False},
        headers=tok.auth("release"),
    )
    assert r.status_code == 200 and r.json()["job"] is None
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "job" in schema["ReleaseReply"]["properties"]


def test_carewall_jobs_lists_progress_and_runs_them(sqlite_svc: Service, tmp_path: Path) -> None:
    svc = sqlite_svc
    rid = queued_release(svc, 3)
    db = ["--db", svc.store.url]
    with wide_console():
        res = run(["jobs", "list", *db])
    assert res.exit_code == 0, res.output
    assert "queued" in res.stdout and "0/3" in res.stdout and rid in res.stdout
    res = run(["jobs"], env={"CAREWALL_DB": svc.store.url})
    assert res.exit_code == 0 and "1 open job(s)" in res.stdout
    res = run(["jobs", "run", *db, "--key", str(tmp_path / "log.key")])
    assert res.exit_code == 0, res.output
    assert "jobs: 1 run, 3 notice(s) sent" in res.stdout
    res = run(["jobs", "list", *db, "--state", "all", "--json"])
    (line,) = res.stdout.splitlines()
    listed = json.loads(line)
    assert (listed["state"], listed["done"], listed["total"]) == ("done", 3, 3)
    assert listed["request_id"] == rid
    assert run(["jobs", "list", *db]).stdout.count("0 open job(s)") == 1
    assert run(["jobs", "list", *db, "--state", "soon"]).exit_code == 2
    assert_once(svc, rid)


def test_a_bad_lease_setting_is_named(sqlite_svc: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    svc = sqlite_svc
    for bad in ("soon", "0", "-5", "nan", "1e9"):
        monkeypatch.setenv("CAREWALL_WORKER_LEASE", bad)
        with pytest.raises(InputError) as e:
            Service.open(svc.store.url)
        assert e.value.field == "CAREWALL_WORKER_LEASE"
    res = run(["jobs", "list", "--db", svc.store.url])
    one_line_error(res, "CAREWALL_WORKER_LEASE")


def test_the_demo_year_runs_its_notices_as_jobs(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    stats = fill_year(svc, scale=0.01)
    assert stats.notices > 0
    assert list_jobs(svc.store, state="open") == []
    delivered = sum(1 for n in svc.notices() if n.delivered_at)
    assert delivered == stats.notices
    done = list_jobs(svc.store, state="done", limit=10_000)
    assert done and all(j.done == j.total and j.stage == "deliver" for j in done)
    # every notice sent was written by a job: deferred releases' jobs wrote theirs as
    # deferred, and the lift's job turned them into sent ones
    assert sum(j.total for j in done) >= delivered


def test_a_release_recorded_before_plans_is_lifted_by_its_job(sqlite_svc: Service) -> None:
    """A deferred release written by the previous version (its record lists each group's
    subjects and has no plan) is lifted like any other: every deferred notice is sent."""
    svc = sqlite_svc
    rid = svc.submit(dict(many(3), prejudice=True)).id
    svc.review(rid, REVIEWER, True)
    assert len(svc.notices(rid, status="deferred")) == 3
    with svc.store.write() as conn:  # the record as the previous version wrote it
        rel = json.loads(conn.execute(sa.select(t.requests.c.release)).scalar_one())
        rel.pop("plan")
        for g in rel["groups"]:
            g.pop("count"), g.pop("facts")
            g["subjects"] = [0, 1, 2]
        conn.execute(t.requests.update().values(release=json.dumps(rel)))
    svc.lift_deferral(rid, REVIEWER)
    notices = svc.notices(rid)
    assert len(notices) == 3 and all(n.status == "sent" and n.delivered_at for n in notices)
    assert_log_audits(svc)
