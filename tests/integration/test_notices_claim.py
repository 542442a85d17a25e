"""Each notice is claimed once (issue item 8): two workers never send two letters.

Workers are threads sharing one Service, threads with a Service each on the same database,
and two processes; on SQLite and on PostgreSQL. Every notice must be delivered exactly once,
with one outbox row (or one message) each, and the code in it must open the subject's view
(a second code would have replaced the first one's hash and voided the letter).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_notices_path import many_subjects

from carewall.errors import AuthError, InputError
from carewall.service import Service, delivery
from carewall.service import tables as t
from carewall.service.jobs import record_queued
from carewall.service.notices import Notice

COUNT = 30
REVIEWER = "dpo-islington"


class Recording:
    """A channel that keeps every message it is handed (thread-safe)."""

    name = "recorded"

    def __init__(self, fail_on: int | None = None) -> None:
        self.sent: list[Notice] = []
        self.fail_on = fail_on
        self._lock = threading.Lock()

    def send(self, notice: Notice) -> None:
        with self._lock:
            if self.fail_on is not None and len(self.sent) == self.fail_on:
                self.fail_on = None
                raise RuntimeError("the channel broke")
            self.sent.append(notice)


def code_in(body: str) -> str:
    found = re.search(r"Your access code:\s+(\S+)", body)
    assert found is not None
    return found.group(1)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of three, so two workers interleave over a few dozen notices."""
    monkeypatch.setattr(delivery, "_OUTBOX_BATCH", 3)
    monkeypatch.setattr(delivery, "_CHANNEL_BATCH", 3)


@pytest.fixture
def pending(db_url: str, tmp_path: Path) -> Iterator[tuple[Service, str]]:
    """An instance with one released request whose COUNT notices are not yet delivered."""
    svc = Service.init(db_url, None, "claims.test/log", tmp_path / "log.key")
    svc.auto_publish = False  # release without delivering: the workers below deliver
    try:
        got = svc.submit(many_subjects(COUNT))
        svc.review(got.id, REVIEWER, True)
        record_queued(svc)  # the notices written, their job left for the workers below
        svc.publish_pending()
        assert len(svc.notices(got.id, undelivered=True)) == COUNT
        yield svc, got.id
    finally:
        svc.close()


def run_together(workers: list[Callable[[], int]]) -> list[int]:
    """Start every worker at once (a barrier, not a sleep); what each delivered."""
    start = threading.Barrier(len(workers))
    results: list[int] = [0] * len(workers)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            results[i] = workers[i]()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    return results


def assert_outbox_once(svc: Service, request_id: str) -> None:
    notices = svc.notices(request_id)
    assert len(notices) == COUNT
    assert all(n.delivered_at and n.claimed_at and n.channel == "outbox" for n in notices)
    letters = [m for m in svc.outbox() if f"Request ID:        {request_id}" in m["body"]]
    per_notice = Counter(m["notice_id"] for m in letters)
    assert per_notice == Counter({n.id: 1 for n in notices})
    position = {n.id: n.subject for n in notices}
    for m in letters:
        view = svc.subject_view(request_id, code_in(m["body"]))
        assert view.subject == position[m["notice_id"]]


@pytest.mark.usefixtures("small_batches")
def test_two_threads_one_service(pending: tuple[Service, str]) -> None:
    svc, request_id = pending
    sent = run_together([svc.deliver_pending, svc.deliver_pending])
    assert sum(sent) == COUNT
    assert_outbox_once(svc, request_id)
    assert svc.deliver_pending() == 0


@pytest.mark.usefixtures("small_batches")
def test_two_services_on_one_database(
    pending: tuple[Service, str], db_url: str, tmp_path: Path
) -> None:
    svc, request_id = pending
    other = Service.open(db_url, tmp_path / "log.key")
    try:
        sent = run_together([svc.deliver_pending, other.deliver_pending])
    finally:
        other.close()
    assert sum(sent) == COUNT
    assert_outbox_once(svc, request_id)


@pytest.mark.usefixtures("small_batches")
def test_two_services_sending_through_a_channel(
    pending: tuple[Service, str], db_url: str, tmp_path: Path
) -> None:
    """Mail-like channels send one at a time: still one message per notice."""
    svc, request_id = pending
    channel = Recording()
    svc.channel = channel
    other = Service.open(db_url, tmp_path / "log.key", channel=channel)
    try:
        sent = run_together([svc.deliver_pending, other.deliver_pending])
    finally:
        other.close()
    assert sum(sent) == COUNT == len(channel.sent)
    notices = svc.notices(request_id)
    assert Counter(m.id for m in channel.sent) == Counter({n.id: 1 for n in notices})
    assert all(n.channel == "recorded" and n.delivered_at for n in notices)
    assert svc.outbox() == []
    position = {n.id: n.subject for n in notices}
    for m in channel.sent:
        assert svc.subject_view(request_id, code_in(m.body)).subject == position[m.id]


_WORKER = """
import sys
from carewall.service import Service, delivery
delivery._OUTBOX_BATCH = 2
svc = Service.open(sys.argv[1], sys.argv[2])
print(svc.deliver_pending())
svc.close()
"""


def test_two_processes(pending: tuple[Service, str], db_url: str, tmp_path: Path) -> None:
    svc, request_id = pending
    cmd = [sys.executable, "-c", _WORKER, db_url, str(tmp_path / "log.key")]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum(int(out.strip().splitlines()[-1]) for out, _ in outs) == COUNT
    assert_outbox_once(svc, request_id)


def test_a_dead_workers_claim_waits_for_release(pending: tuple[Service, str]) -> None:
    svc, request_id = pending
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    svc.clock = lambda: now
    first = svc.notices(request_id)[0]
    # a worker claimed this notice at 11:00 and died before sending it
    with svc.store.write() as conn:
        conn.execute(
            t.notices.update()
            .where(t.notices.c.id == first.id)
            .values(claimed_at="2026-12-01T11:00:00Z")
        )
    assert svc.deliver_pending() == COUNT - 1
    (stuck,) = svc.notices(request_id, undelivered=True)
    assert stuck.id == first.id and stuck.claimed_at == "2026-12-01T11:00:00Z"
    assert svc.outbox(first.id) == []
    assert svc.deliver_pending() == 0  # a claim is never taken over by another run
    assert svc.release_stale_claims(2 * 3600) == 0  # not that old yet
    assert svc.release_stale_claims(3600) == 1
    assert svc.release_stale_claims(0) == 0  # delivered notices' claims are never freed
    assert svc.deliver_pending() == 1
    assert_outbox_once(svc, request_id)


def test_release_stale_claims_refuses_a_bad_age(pending: tuple[Service, str]) -> None:
    svc, _ = pending
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(InputError) as e:
            svc.release_stale_claims(bad)
        assert e.value.field == "older_than_seconds"


@pytest.mark.usefixtures("small_batches")
def test_a_failing_channel_keeps_the_notice_in_hand_claimed(
    pending: tuple[Service, str],
) -> None:
    """The notice being sent when the worker failed stays claimed (it may have left); the
    rest of its batch is given back, and the next run sends them."""
    svc, request_id = pending
    channel = Recording(fail_on=1)  # the second message fails with an unexpected error
    svc.channel = channel
    with pytest.raises(RuntimeError):
        svc.deliver_pending()
    notices = {n.id: n for n in svc.notices(request_id)}
    in_hand = sorted(notices)[1]
    assert notices[in_hand].claimed_at and not notices[in_hand].delivered_at
    assert [n.id for n in notices.values() if n.claimed_at] == sorted(notices)[:2]
    assert svc.deliver_pending() == COUNT - 2
    assert len(channel.sent) == COUNT - 1
    svc.clock = lambda: datetime.now(UTC) + timedelta(hours=2)
    assert svc.release_stale_claims(3600) == 1
    assert svc.deliver_pending() == 1
    assert Counter(m.id for m in channel.sent) == Counter({i: 1 for i in notices})
    # only the last code sent for each subject opens the view
    for m in channel.sent:
        svc.subject_view(request_id, code_in(m.body))
    with pytest.raises(AuthError):
        svc.subject_view(request_id, "not-a-code")


def test_a_claimed_notice_is_never_claimed_again(pending: tuple[Service, str]) -> None:
    """A notice already claimed is never claimed again, even by the same Service."""
    svc, request_id = pending
    ids = [n.id for n in svc.notices(request_id)]
    assert delivery.Delivery(svc).claim(ids[:5]) == ids[:5]
    assert delivery.Delivery(svc).claim(ids[:7]) == ids[5:7]
    with svc.store.read() as conn:
        claimed = conn.execute(
            sa.select(sa.func.count()).where(
                (t.notices.c.request_id == request_id) & t.notices.c.claimed_at.is_not(None)
            )
        ).scalar_one()
    assert claimed == 7
    assert svc.deliver_pending() == COUNT - 7


def test_serve_frees_stale_claims_and_sends_at_start(sqlite_url: str, tmp_path: Path) -> None:
    """A server started after a crash retries what the dead worker left claimed."""
    from api_support import uvicorn_server

    key = tmp_path / "log.key"
    svc = Service.init(sqlite_url, None, "claims.test/log", key)
    svc.auto_publish = False
    try:
        got = svc.submit(many_subjects(3))
        svc.review(got.id, REVIEWER, True)
        record_queued(svc)
        svc.publish_pending()
        first = svc.notices(got.id)[0]
        with svc.store.write() as conn:
            conn.execute(
                t.notices.update()
                .where(t.notices.c.id == first.id)
                .values(claimed_at="2000-01-01T00:00:00Z")
            )
        log = tmp_path / "serve.log"
        with uvicorn_server(sqlite_url, key, log):
            pass
        assert "notices: 1 stale claim(s) freed, 3 sent" in log.read_text()
        assert all(n.delivered_at for n in svc.notices(got.id))
        assert Counter(m["notice_id"] for m in svc.outbox()) == Counter(
            {n.id: 1 for n in svc.notices(got.id)}
        )
    finally:
        svc.close()
