"""A server SIGKILLed during notice delivery and release jobs: afterwards every notice is
delivered once, with one working code (issue 13, items 2 and 3).

A real ``carewall serve`` runs in a child process with one hook that holds it at a chosen
point (printing ``HELD``), where the test kills it with SIGKILL:

- ``letters:3``: inside the third batch's transaction, letters written but not committed;
- ``claim:2``: right after the second batch of notices was claimed (claims committed,
  nothing sent);
- ``record:2``: inside the second batch of the job writing a release's notices (its rows
  and log entries written, not committed), batches of 1,000 subjects;
- ``job:1``: right after a small release committed and its caller claimed the job to run
  it at once, before any notice went.

Each time another server is started on the same database with a short worker lease; it
must take over the dead worker's job and claims and finish. Then every notice of every
release has exactly one letter in the outbox, the code in it opens the subject's view
(in-process for all, over HTTP for a few), and the log verifies and audits.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from api_support import example, free_port, tokens_for, uvicorn_server, wait_up
from logaudit import assert_log_audits

from carewall.ledger import verify_ledger
from carewall.service import Service
from carewall.service import tables as t
from carewall.service.jobstore import latest_for, list_jobs

BIG = 2_500  # five outbox batches of 500: a job for the background worker
LEASE = "2"  # seconds: a killed worker's job and claims are taken over this soon
DEADLINE = 300.0  # seconds to wait for a condition on a loaded machine

CHILD = r"""
import os, sys, threading, time
from carewall.service import delivery, jobs, recording
from carewall.service.notices import OutboxChannel

recording.BATCH = 1000
point, nth = os.environ["CW_HOLD"].split(":")
nth = int(nth)
count = 0
lock = threading.Lock()

def hit():
    global count
    with lock:
        count += 1
        return count == nth

def hold():
    print("HELD", flush=True)
    time.sleep(600)

if point == "letters":
    send_in = OutboxChannel.send_in
    def held_send_in(self, conn, notices):
        send_in(self, conn, notices)
        if hit():
            hold()
    OutboxChannel.send_in = held_send_in
elif point == "claim":
    claim = delivery.Delivery.claim
    def held_claim(self, ids):
        got = claim(self, ids)
        if got and hit():
            hold()
        return got
    delivery.Delivery.claim = held_claim
elif point == "record":
    batch = recording._batch
    def held_batch(*args, **kwargs):
        got = batch(*args, **kwargs)
        if hit():
            hold()
        return got
    recording._batch = held_batch
elif point == "job":
    run_claimed = jobs.run_claimed
    def held_run(*args, **kwargs):
        if hit():
            hold()
        return run_claimed(*args, **kwargs)
    jobs.run_claimed = held_run

from carewall.cli import main
main(["serve", *sys.argv[1:]])
"""


def many(n: int) -> dict[str, object]:
    doc = example(categories=["name", "address"])
    doc["subjects"] = [
        {"ref": f"S{i:06d}", "is_child": False, "is_victim_or_witness": False}
        for i in range(1, n + 1)
    ]
    return doc


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "CAREWALL_WORKER_LEASE": LEASE}


@contextmanager
def held_server(db_url: str, key: Path, hold: str) -> Iterator[tuple[str, queue.Queue[str]]]:
    """A server that stops at ``hold`` (printing HELD); yields its URL and its output lines.

    The caller kills it; it is killed here too, whatever happens.
    """
    port = free_port()
    args = ["--db", db_url, "--key", str(key), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**_env(), "CW_HOLD": hold},
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base + "/log/checkpoint", proc, lambda: " | ".join(drain(lines)))
        yield base, lines
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(60)


def drain(lines: queue.Queue[str]) -> list[str]:
    out = []
    while not lines.empty():
        out.append(lines.get_nowait())
    return out


def wait_held(lines: queue.Queue[str]) -> None:
    seen: list[str] = []
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line == "HELD":
            return
        seen.append(line)
    raise AssertionError("the server never reached the hold point: " + " | ".join(seen[-20:]))


def undelivered(svc: Service, request_id: str) -> int:
    with svc.store.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    (t.notices.c.request_id == request_id) & t.notices.c.delivered_at.is_(None)
                )
            ).scalar_one()
        )


def open_jobs(svc: Service, request_id: str) -> int:
    return len(list_jobs(svc.store, state="open", request_id=request_id))


def wait_delivered(svc: Service, request_id: str) -> None:
    """Until the request's jobs are done (every notice written) and nothing is undelivered."""
    deadline = time.monotonic() + DEADLINE
    while open_jobs(svc, request_id) or undelivered(svc, request_id):
        assert time.monotonic() < deadline, f"{undelivered(svc, request_id)} never delivered"
        time.sleep(0.2)


def code_in(body: str) -> str:
    found = re.search(r"Your access code:\s+(\S+)", body)
    assert found is not None
    return found.group(1)


def assert_once_with_working_codes(svc: Service, request_id: str) -> dict[int, str]:
    """One letter per notice, each code opening that subject's view; the codes by notice."""
    notices = svc.notices(request_id)
    assert notices and all(n.delivered_at and n.channel == "outbox" for n in notices)
    mine = {n.id: n.subject for n in notices}
    letters = [m for m in svc.outbox() if m["notice_id"] in mine]
    assert Counter(m["notice_id"] for m in letters) == Counter(dict.fromkeys(mine, 1))
    codes = {}
    for m in letters:
        code = code_in(m["body"])
        assert svc.subject_view(request_id, code).subject == mine[m["notice_id"]]
        codes[m["notice_id"]] = code
    assert len(set(codes.values())) == len(codes)  # one code each, never shared
    job = latest_for(svc.store, request_id)
    assert job is not None and job.state == "done" and job.done == job.total == len(notices)
    return codes


@pytest.mark.slow
def test_killed_during_delivery_and_jobs_every_notice_goes_once(
    db_url: str, tmp_path: Path
) -> None:
    key = tmp_path / "log.key"
    svc = Service.init(db_url, None, "crash.test/log", key)
    try:
        tok = tokens_for(svc)
        big = svc.submit(many(BIG)).id
        small = svc.submit(many(3)).id
        log = tmp_path / "serve.log"

        # 0. The release returns at once with its job queued; the job is killed while
        # writing the second batch of notices (rows and log entries).
        with held_server(db_url, key, "record:2") as (base, lines):
            r = httpx.post(
                f"{base}/api/requests/{big}/review",
                json={"release": True},
                headers=tok.auth("release"),
                timeout=DEADLINE,
            )
            assert r.status_code == 200, r.text
            job = r.json()["job"]
            assert job["total"] == BIG and job["state"] in ("queued", "running")
            wait_held(lines)
        assert len(svc.notices(big)) == 1000  # the first batch committed, the second died
        assert latest_for(svc.store, big).stage == "record"  # type: ignore[union-attr]

        # 1. The next server takes the job over, writes the rest, and is killed in the
        # third batch of letters.
        with held_server(db_url, key, "letters:3") as (base, lines):
            wait_held(lines)
        assert len(svc.notices(big)) == BIG
        left = undelivered(svc, big)
        assert 0 < left < BIG  # two batches went, the third died uncommitted

        # 2. The next server takes the job over, and is killed with claims in hand.
        with held_server(db_url, key, "claim:2") as (_base, lines):
            wait_held(lines)
        assert 0 < undelivered(svc, big) <= left

        # 3. A third server finishes it.
        with uvicorn_server(db_url, key, log, env={"CAREWALL_WORKER_LEASE": LEASE}):
            wait_delivered(svc, big)
        codes = assert_once_with_working_codes(svc, big)
        assert len(codes) == BIG

        # 4. A small release is committed, and its caller killed before sending anything.
        with held_server(db_url, key, "job:1") as (base, lines):
            posted: list[BaseException] = []

            def post() -> None:
                try:
                    httpx.post(
                        f"{base}/api/requests/{small}/review",
                        json={"release": True},
                        headers=tok.auth("release"),
                        timeout=DEADLINE,
                    )
                except httpx.TransportError as e:  # the server dies under the call
                    posted.append(e)

            caller = threading.Thread(target=post)
            caller.start()
            wait_held(lines)
        caller.join(DEADLINE)
        # the release is durable; its notices are its job's to write, and that job's
        # worker is dead
        assert svc.get(small).outcome == "released" and open_jobs(svc, small) == 1
        assert undelivered(svc, small) in (0, 3)

        # 5. Nothing waits for some later release: the next server resumes it by itself.
        with uvicorn_server(db_url, key, log, env={"CAREWALL_WORKER_LEASE": LEASE}) as base:
            wait_delivered(svc, small)
            small_codes = assert_once_with_working_codes(svc, small)
            for rid, code in [(small, next(iter(small_codes.values())))] + [
                (big, c) for c in list(codes.values())[:2]
            ]:
                view = httpx.post(
                    f"{base}/api/subject/view", json={"request": rid, "code": code}, timeout=60
                )
                assert view.status_code == 200, view.text
        report = verify_ledger(svc.store)
        assert report.ok, report
        assert_log_audits(svc)
    finally:
        svc.close()
