"""A request about 100,000 people (issue item 7): logged, released, noticed and verified.

No ledger entry may exceed what a C2SP entry bundle can carry (65,535 bytes), so the
request entry carries the subjects' Merkle root, not their commitments; every person's
notice carries their path to that root. The timings are printed (run with ``-s``), never
asserted.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_support import example
from click.testing import CliRunner
from fastapi.testclient import TestClient
from logaudit import assert_log_audits

from carewall.api.app import create_app
from carewall.cli import main
from carewall.ledger.log import MAX_ENTRY_BYTES
from carewall.ledger.subjects import verify_subject
from carewall.ledger.tiles import encode_index
from carewall.service import Service
from carewall.service import tables as t

SUBJECTS = 100_000
BUNDLE = 256


def big_request() -> dict[str, Any]:
    """The police theft-suspect example, about SUBJECTS people (refs S000001 …)."""
    doc = example(categories=["name", "address"])
    doc["subjects"] = [
        {"ref": f"S{i:06d}", "is_child": False, "is_victim_or_witness": False}
        for i in range(1, SUBJECTS + 1)
    ]
    return doc


@contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start


def bundle_path(n: int, size: int) -> str:
    width = min(BUNDLE, size - n * BUNDLE)
    suffix = "" if width == BUNDLE else f".p/{width}"
    return f"/log/tile/entries/{encode_index(n)}{suffix}"


@pytest.mark.slow  # minutes on a shared two-core machine
def test_a_request_about_100000_people(sqlite_url: str, tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    key = tmp_path / "log.key"
    svc = Service.init(sqlite_url, None, "large.test/log", key)
    try:
        doc = big_request()
        with timed(timings, "submit"):
            got = svc.submit(doc)
        assert got.outcome == "review"
        deliver = svc.deliver_pending

        def timed_delivery() -> int:  # the delivery that review runs after its commit
            with timed(timings, "  of which: deliver notices"):
                return deliver()

        svc.deliver_pending = timed_delivery  # type: ignore[method-assign]
        with timed(timings, "review, release and deliver"):
            svc.review(got.id, "dpo-islington", True)
        assert "  of which: deliver notices" in timings
        svc.publish_pending()  # the tiles below are served up to the signed size
        size = svc.ledger.size()

        # every notice delivered once, its path checking against the logged root
        with svc.store.read() as conn:
            request_index = conn.execute(
                sa.select(t.events.c.log_index).where(
                    (t.events.c.request_id == got.id) & (t.events.c.kind == "received")
                )
            ).scalar_one()
            delivered = conn.execute(
                sa.select(sa.func.count()).where(
                    (t.notices.c.request_id == got.id) & t.notices.c.delivered_at.is_not(None)
                )
            ).scalar_one()
            letters = conn.execute(sa.select(sa.func.count()).select_from(t.outbox)).scalar_one()
            notice_of = dict(
                conn.execute(
                    sa.select(t.notices.c.position, t.notices.c.id).where(
                        t.notices.c.position.in_([0, SUBJECTS // 2, SUBJECTS - 1])
                        & (t.notices.c.request_id == got.id)
                    )
                ).all()
            )
        assert delivered == letters == SUBJECTS
        (raw,) = svc.ledger.entries(request_index, request_index + 1)
        entry = json.loads(raw)
        assert entry["kind"] == "request" and entry["subjects"] == SUBJECTS
        for position, notice_id in notice_of.items():
            (letter,) = svc.outbox(notice_id)
            body = letter["body"]
            commitment = re.search(r"Your commitment:\s+(\S+)", body)
            assert commitment is not None
            lines = body.split("Your subjects path", 1)[1].splitlines()[1:]
            path = [s.strip() for s in lines if re.fullmatch(r"  [0-9a-f]{64}", s)]
            assert 1 <= len(path) <= 17  # ceil(log2(100,000)), fewer at the ragged right edge
            verify_subject(commitment.group(1), position, SUBJECTS, path, entry["subjects_root"])
        with timed(timings, "one subject view"):
            code = re.search(r"Your access code:\s+(\S+)", body)
            assert code is not None
            view = svc.subject_view(got.id, code.group(1))
        assert view.subject == SUBJECTS - 1 and view.subject_path == path

        # no entry is over the bundle limit
        with timed(timings, "read every entry"):
            largest = 0
            for start in range(0, size, 10_000):
                chunk = svc.ledger.entries(start, min(size, start + 10_000))
                largest = max(largest, *(len(e) for e in chunk))
        assert largest <= MAX_ENTRY_BYTES
        assert len(raw) < 2_000  # the request entry itself stays small

        # the entry bundles covering the request and everything after it are served
        with timed(timings, "fetch entry bundles"), TestClient(create_app(svc)) as client:
            for n in range(request_index // BUNDLE, (size - 1) // BUNDLE + 1):
                r = client.get(bundle_path(n, size))
                assert r.status_code == 200, (n, r.status_code)
        with timed(timings, "carewall ledger verify"):
            result = CliRunner().invoke(main, ["ledger", "verify", "--db", sqlite_url])
        assert result.exit_code == 0, result.output
        # and the outside auditor replays the whole log, 100,000 notices included
        with timed(timings, "carewall audit (replay)"):
            assert assert_log_audits(svc) == svc.ledger.size()
    finally:
        svc.close()
    print(f"\n{SUBJECTS} subjects, {size} log entries:")
    order = ["submit", "review, release and deliver", "  of which: deliver notices"]
    for name in order + [n for n in timings if n not in order]:
        print(f"  {name:<30} {timings[name]:8.2f} s")


def test_a_request_about_100000_people_is_accepted_over_http(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Issue 12: a request document of ~7 MB is under POST /api/requests' own 16 MiB limit
    (every other body stays at 1 MiB); one over it is 413 before any of it is read."""
    from api_support import tokens_for

    svc = Service.init(sqlite_url, None, "large.test/log", tmp_path / "log.key")
    try:
        tok = tokens_for(svc)
        body = json.dumps(big_request()).encode()
        assert 1 << 20 < len(body) < 16 << 20
        with TestClient(create_app(svc)) as client:
            start = time.perf_counter()
            r = client.post(
                "/api/requests",
                content=body,
                headers={**tok.auth("requester"), "Content-Type": "application/json"},
            )
            print(f"\n100,000-subject request over HTTP: {time.perf_counter() - start:.2f} s")
            assert r.status_code == 201, r.text[:300]
            assert r.json()["outcome"] == "review"
            assert svc.get(r.json()["id"]).subjects[-1].ref == f"S{SUBJECTS:06d}"
            over = client.post(
                "/api/requests",
                content=b" " * ((16 << 20) + 1),
                headers={**tok.auth("requester"), "Content-Type": "application/json"},
            )
            assert over.status_code == 413 and over.json()["error"] == "too_large"
            other = client.post(
                f"/api/requests/{r.json()['id']}/review",
                content=b" " * ((1 << 20) + 1),
                headers={**tok.auth("release"), "Content-Type": "application/json"},
            )
            assert other.status_code == 413
        assert len(svc.list_requests()) == 1
    finally:
        svc.close()
