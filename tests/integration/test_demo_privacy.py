"""The demo's public log holds no personal data, and the demo year is reproducible."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from carewall.cli import main
from carewall.service import Service

# Every string in a public entry must look like one of these: ids, rule ids, hashes, times.
SAFE = re.compile(
    r"^(?:[a-z0-9][a-z0-9_\-]*(?:/[a-z0-9_\-]+)?"  # ids and rule ids
    r"|sha256:[0-9a-f]{64}|[0-9a-f]{64}"  # policy hashes and commitments
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ|\d{4}-\d\d-\d\d)$"  # times and review dates
)


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def private_values(svc: Service) -> set[str]:
    """Every subject ref, name, contact, reference and free text the instance holds."""
    found: set[str] = set()
    reg = svc.register()
    found |= {r.name for r in reg.reviewers.values()}
    for summary in svc.list_requests():
        rec = svc.get(summary.id)
        found.add(rec.reference)
        found |= {s.ref for s in rec.subjects}
        for person in (rec.officer, rec.authorised_by):
            if person:
                found |= {v for k, v in person.items() if k in ("name", "contact") and v}
        if rec.court_order:
            found.add(rec.court_order["reference"])
        if rec.necessity:
            found.add(rec.necessity)
        if rec.appeal:
            found.add(rec.appeal.grounds)
    for msg in svc.outbox():
        if msg["recipient"]:
            found.add(msg["recipient"])
    return found


@pytest.mark.slow
def test_demo_public_log_has_no_personal_data(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    res = CliRunner().invoke(
        main, ["demo", "--db", str(db), "--scale", "0.04", "--no-serve"], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    # The chart shows immigration enforcement asking, and receiving nothing.
    bar = re.search(r"immigration_enforcement\s+█+\s+(\d+)\s+(\d+)", res.output)
    assert bar is not None and int(bar.group(1)) > 0 and bar.group(2) == "0"
    svc = Service.open(str(db))
    raw = svc.ledger.entries(0, svc.ledger.size())
    entries = [json.loads(e) for e in raw]
    kinds = {e["kind"] for e in entries}
    assert {
        "policy",
        "organisation",
        "reviewer",
        "request",
        "decision",
        "review",
        "release",
        "notice",
        "appeal",
        "deferral",
    } <= kinds
    secrets = private_values(svc)
    assert len(secrets) > 100  # the scan has something to look for
    blob = b"\n".join(raw).decode()
    leaked = sorted(s for s in secrets if s in blob)
    assert leaked == []
    org_names = {o.name for o in svc.register().organisations.values()}
    for e in entries:
        # Two fields are public text by contract: the policy's Cedar source (so anyone can
        # read the rule behind an id) and a public body's name from the register.
        if e["kind"] == "policy":
            assert e["text"] == svc.engine().local_text
            e = {k: v for k, v in e.items() if k != "text"}
        if e["kind"] == "organisation":
            assert e["name"] in org_names
            e = {k: v for k, v in e.items() if k != "name"}
        for s in strings(e):
            assert SAFE.match(s), (e["kind"], s)
    # most Home Office tracing requests end refused by the pledge
    ho = [r for r in svc.list_requests(requester="home-office-ie")]
    assert ho and all(r.outcome == "refused" for r in ho)
    assert [
        e
        for e in entries
        if e["kind"] == "release" and e["recipient_function"] == "immigration_enforcement"
    ] == []


@pytest.mark.slow
def test_demo_year_is_reproducible(tmp_path: Path) -> None:
    def year(path: Path) -> list[tuple[str, str, str, str, int]]:
        res = CliRunner().invoke(
            main,
            ["demo", "--db", str(path), "--scale", "0.02", "--no-serve", "--seed", "7"],
            catch_exceptions=False,
        )
        assert res.exit_code == 0, res.output
        svc = Service.open(str(path))
        return [(r.id, r.requester, r.holder, r.outcome, r.subjects) for r in svc.list_requests()]

    first = year(tmp_path / "a.db")
    assert len(first) > 30
    assert year(tmp_path / "b.db") == first
