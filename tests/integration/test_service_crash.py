"""A process killed mid-transaction leaves no orphan ledger entry and no unlogged state.

A child process runs a real submit or review against a real database, is held inside the
write transaction (just before, or just after, the ledger append), and is SIGKILLed there.
The database must then show neither the state change nor the ledger entries.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from carewall.ledger import verify_ledger
from carewall.service import Service
from carewall.service import tables as t

DOC = {
    "reference": "MPS-2026-000999",
    "requester": "met-police",
    "holder": "whittington-health",
    "purpose": "prevention_detection_of_crime",
    "legal_basis": "dpa2018_sch2_p1_para2_crime",
    "offence": "theft_act_1968_s1",
    "subjects": [{"ref": "9434765919", "is_child": False, "is_victim_or_witness": False}],
    "categories": ["name", "address"],
}

CHILD = r"""
import json, sys, time
from carewall.ledger import Ledger
from carewall.service import Service

url, key, action, when, arg = sys.argv[1:6]

def holding(original):
    def held(self, conn, *args):
        if when == "before":
            print("HELD", flush=True); time.sleep(600)
        out = original(self, conn, *args)
        print("HELD", flush=True); time.sleep(600)
        return out
    return held

# A submit appends already-encoded entries; a review appends entry objects.
Ledger.append_in = holding(Ledger.append_in)
Ledger.append_encoded_in = holding(Ledger.append_encoded_in)
svc = Service.open(url, key)
if action == "submit":
    svc.submit(arg)
else:
    svc.review(arg, "ig-whittington", release=True)
"""


def kill_inside(url: str, key: Path, action: str, when: str, arg: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(key), action, when, arg],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "HELD", proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def snapshot(svc: Service) -> tuple[int, list[tuple[str, str, str]], int, int]:
    with svc.store.read() as conn:
        rows = conn.execute(
            sa.select(t.requests.c.id, t.requests.c.stage, t.requests.c.outcome)
        ).all()
        events = conn.execute(sa.select(sa.func.count()).select_from(t.events)).scalar_one()
        notices = conn.execute(sa.select(sa.func.count()).select_from(t.notices)).scalar_one()
    return svc.ledger.size(), sorted(tuple(r) for r in rows), events, notices


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "after"])
def test_killed_mid_transaction_leaves_state_and_log_agreeing(
    db_url: str, tmp_path: Path, when: str
) -> None:
    key = tmp_path / "crash.key"
    svc = Service.init(db_url, None, "crash.test/log", key)
    pending = svc.submit(DOC)
    before = snapshot(svc)

    kill_inside(db_url, key, "submit", when, json.dumps(DOC))
    after_submit = Service.open(db_url, key)
    assert snapshot(after_submit) == before

    kill_inside(db_url, key, "review", when, pending.id)
    svc2 = Service.open(db_url, key)
    assert snapshot(svc2) == before
    assert svc2.get(pending.id).stage == "decided"
    report = verify_ledger(svc2.store)
    assert report.ok, report

    # and the instance still works: the next append takes the next index
    rec = svc2.review(pending.id, "ig-whittington", release=True)
    assert rec.outcome == "released"
    assert svc2.ledger.size() == before[0] + 3
