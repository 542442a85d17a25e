"""The service on PostgreSQL: the CLI lifecycle in real processes, and concurrent writers."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from carewall.ledger import verify_ledger
from carewall.service import Service

pytestmark = pytest.mark.postgres

CAREWALL = str(Path(sys.executable).with_name("carewall"))
DOC = {
    "reference": "MPS-2026-000555",
    "requester": "islington-council",
    "holder": "st-marys-primary",
    "purpose": "safeguarding_child",
    "legal_basis": "children_act_1989_s47",
    "subjects": [{"ref": "H801200001001A", "is_child": True, "is_victim_or_witness": False}],
    "categories": ["name", "attendance", "nationality"],
}


def cw(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CAREWALL, *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def test_cli_lifecycle_on_postgres(pg_url: str, tmp_path: Path) -> None:
    db = ["--db", pg_url, "--key", str(tmp_path / "pg.key")]
    assert cw("init", *db).returncode == 0
    res = cw("submit", *db, "-", stdin=json.dumps(DOC))
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["outcome"] == "review"
    res = cw("review", got["id"], "--reviewer", "head-st-marys", "--release", *db)
    assert res.returncode == 2 and "release_reviewer" in res.stderr  # appeal role only
    res = cw("review", got["id"], "--reviewer", "dpo-st-marys", "--release", *db)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["released"] == ["attendance", "name"]
    res = cw(
        "appeal",
        got["id"],
        "--by",
        "subject",
        "--grounds",
        "x",
        "--decide",
        "head-st-marys",
        "--overturn",
        *db,
    )
    assert json.loads(res.stdout) == {"id": got["id"], "stage": "overturned", "outcome": "refused"}
    svc = Service.open(pg_url, tmp_path / "pg.key")
    kinds = [json.loads(e)["kind"] for e in svc.ledger.entries(0, svc.ledger.size())]
    register = len(svc.register().organisations) + len(svc.register().reviewers)
    assert kinds[: 1 + register] == ["policy"] + ["organisation"] * len(
        svc.register().organisations
    ) + ["reviewer"] * len(svc.register().reviewers)
    assert kinds[1 + register :] == [
        "request",
        "decision",
        "review",
        "release",
        "notice",
        "appeal",
        "appeal",
    ]


def test_concurrent_submitters_share_one_log(pg_url: str, tmp_path: Path) -> None:
    key = tmp_path / "pg.key"
    first = Service.init(pg_url, None, "pg.test/log", key)
    at_init = first.ledger.size()  # the policy and the register
    first.close()

    def submit_many(n: int) -> list[int]:
        svc = Service.open(pg_url, key)
        try:
            return [svc.submit(DOC).log_index for _ in range(n)]
        finally:
            svc.close()

    with ThreadPoolExecutor(4) as pool:
        indices = [i for got in pool.map(submit_many, [5] * 4) for i in got]
    assert len(set(indices)) == 20
    svc = Service.open(pg_url, key)
    assert len(svc.list_requests()) == 20
    assert svc.ledger.size() == at_init + 2 * 20
    assert verify_ledger(svc.store).ok


def test_a_missing_database_is_named_not_called_unavailable() -> None:
    missing = f"postgresql://postgres@127.0.0.1:5432/cw_missing_{uuid.uuid4().hex[:12]}"
    res = cw("init", "--db", missing)
    assert res.returncode == 3
    assert "does not exist" in res.stderr and "createdb" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
