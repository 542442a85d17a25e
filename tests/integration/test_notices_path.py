"""A notice carries the subject's path in the request's subjects tree (issue item 7).

The request's log entry lists its subjects only as ``subjects_root``; each person's notice
(and their view with the access code) carries their commitment's RFC 9162 path to it, which
must verify against the root read from the log itself, not from the service's tables.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_support import api, example

from carewall.errors import VerificationError
from carewall.ledger.subjects import verify_subject
from carewall.service import Service
from carewall.service import tables as t
from carewall.service.jobs import drain
from carewall.service.jobstore import latest_for
from carewall.service.notices import render_notice

N = 1000
POSITIONS = (0, N // 2, N - 1)
HOLDER_REVIEWER = "dpo-islington"


def many_subjects(n: int) -> dict[str, Any]:
    doc = example(categories=["name", "address"])
    doc["subjects"] = [
        {"ref": f"S{i:06d}", "is_child": False, "is_victim_or_witness": False}
        for i in range(1, n + 1)
    ]
    return doc


def letter_of(svc: Service, notice_id: int) -> str:
    (msg,) = svc.outbox(notice_id)
    return str(msg["body"])


def field(body: str, label: str) -> str:
    found = re.search(rf"^{re.escape(label)}:\s+(\S+)", body, re.MULTILINE)
    assert found is not None, label
    return found.group(1)


def subject_part(body: str) -> dict[str, Any]:
    """What the person reads in their letter about their place in the request."""
    pos = re.search(r"^Your position:\s+(\d+) \(counting from 0\) of (\d+) subjects", body, re.M)
    assert pos is not None
    lines = body.split("Your subjects path", 1)[1].splitlines()[1:]
    path = []
    for line in lines:
        if not re.fullmatch(r"  [0-9a-f]{64}", line):
            break
        path.append(line.strip())
    return {
        "request_index": int(field(body, "Request log index")),
        "root": field(body, "Subjects root"),
        "position": int(pos.group(1)),
        "count": int(pos.group(2)),
        "path": path,
        "commitment": field(body, "Your commitment"),
        "code": field(body, "Your access code"),
    }


def logged_request(svc: Service, index: int) -> dict[str, Any]:
    (raw,) = svc.ledger.entries(index, index + 1)
    entry: dict[str, Any] = json.loads(raw)
    assert entry["kind"] == "request"
    return entry


def released(svc: Service, n: int) -> tuple[str, dict[int, int]]:
    """Submit and release a request about ``n`` people; notice id by subject position."""
    got = svc.submit(many_subjects(n))
    svc.review(got.id, HOLDER_REVIEWER, True)
    drain(svc)  # a release of more than 100 under a server is its worker's: run it here
    deadline = time.monotonic() + 300  # or wait for the server's worker, if it took it
    while (job := latest_for(svc.store, got.id)) is None or job.state != "done":
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    rec = svc.get(got.id)
    assert rec.outcome == "released" and len(rec.notices) == n
    assert all(n.delivered_at for n in rec.notices)
    return got.id, {notice.subject: notice.id for notice in rec.notices}


def test_each_notice_path_verifies_against_the_logged_root(db_url: str, tmp_path: Path) -> None:
    svc = Service.init(db_url, None, "paths.test/log", tmp_path / "log.key")
    try:
        request_id, notice_of = released(svc, N)
        for position in POSITIONS:
            part = subject_part(letter_of(svc, notice_of[position]))
            entry = logged_request(svc, part["request_index"])
            assert entry["request"] == request_id and entry["subjects"] == N
            assert part["root"] == entry["subjects_root"]
            assert (part["position"], part["count"]) == (position, N)
            # the check a person (or anyone holding the letter) makes, against the log
            verify_subject(part["commitment"], position, N, part["path"], entry["subjects_root"])
            # the same path is kept in svc_notices.path, and the commitment is the one the
            # notice's own log entry names
            with svc.store.read() as conn:
                row = conn.execute(
                    sa.select(t.notices.c.path, t.notices.c.log_index).where(
                        t.notices.c.id == notice_of[position]
                    )
                ).one()
            assert json.loads(row.path) == part["path"]
            (raw,) = svc.ledger.entries(row.log_index, row.log_index + 1)
            assert json.loads(raw)["subject"] == part["commitment"]
            # a path proves one position only: moved or altered, it fails
            with pytest.raises(VerificationError):
                verify_subject(
                    part["commitment"], (position + 1) % N, N, part["path"], part["root"]
                )
            bad = [part["path"][0][::-1], *part["path"][1:]]
            with pytest.raises(VerificationError):
                verify_subject(part["commitment"], position, N, bad, part["root"])
    finally:
        svc.close()


def test_subject_view_over_http_returns_the_path(sqlite_url: str, tmp_path: Path) -> None:
    with api(sqlite_url, tmp_path) as (client, svc, _tokens):
        request_id, notice_of = released(svc, N)
        for position in POSITIONS:
            part = subject_part(letter_of(svc, notice_of[position]))
            r = client.post("/api/subject/view", json={"request": request_id, "code": part["code"]})
            assert r.status_code == 200, r.text
            view = r.json()
            # the fields the view had before are all still there
            for name in ("subject", "commitment", "inclusion_proof", "checkpoint", "categories"):
                assert name in view
            entry = logged_request(svc, view["request_index"])
            assert view["subject"] == position and view["subject_count"] == N
            assert view["subjects_root"] == entry["subjects_root"]
            assert view["subject_path"] == part["path"]
            verify_subject(
                view["commitment"], position, N, view["subject_path"], entry["subjects_root"]
            )


def test_a_single_subject_has_an_empty_path(sqlite_url: str, tmp_path: Path) -> None:
    svc = Service.init(sqlite_url, None, "paths.test/log", tmp_path / "log.key")
    try:
        _, notice_of = released(svc, 1)
        body = letter_of(svc, notice_of[0])
        assert "(none: the only subject)" in body
        part = subject_part(body)
        entry = logged_request(svc, part["request_index"])
        # a one-leaf tree's root is the leaf hash itself: the empty path verifies
        verify_subject(part["commitment"], 0, 1, [], entry["subjects_root"])
        view = svc.subject_view(entry["request"], part["code"])
        assert view.subject_path == [] and view.subject_count == 1
    finally:
        svc.close()


def test_render_notice_without_a_subjects_root_leaves_the_part_out() -> None:
    """Data kept from a notice built before the subjects tree existed still renders."""
    data: dict[str, Any] = {
        "holder_name": "Islington Council",
        "categories": ["name"],
        "legal_basis": "consent",
        "court_order": False,
        "inclusion_proof": [],
        "recipient_name": "Metropolitan Police Service",
        "recipient": "met-police",
        "purpose": "prevention_detection_of_crime",
        "released_at": "2026-11-21T10:00:00Z",
        "release_index": 3,
        "tree_size": 4,
        "root": "00" * 32,
        "commitment": "11" * 32,
        "checkpoint": None,
        "request_id": "r0",
        "code": "c0",
    }
    _, body = render_notice(data)
    assert "Subjects root" not in body and "Your access code:  c0" in body
