"""Playing the demo's synthetic year on a service, for ``carewall demo``.

Every request of the year (:mod:`carewall.cli.demo_scenarios`) is submitted at its time, and
what follows it (reviews, appeals, withdrawals, deferrals lifted or renewed, notices) is
played in time order from a seeded generator: the same seed gives the same requests,
decisions, reviews, appeals and notices.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from carewall.cli.demo_scenarios import (
    EXTRA_REVIEWERS,
    SCENARIOS,
    YEAR,
    Scenario,
    document,
    plan_year,
)
from carewall.errors import ConflictError
from carewall.service.facade import Service
from carewall.service.jobs import drain, record_queued
from carewall.service.records import RequestRecord
from carewall.service.submit_batch import SubmitBatch

__all__ = ["SCENARIOS", "DemoStats", "Scenario", "fill_year", "plan_year", "year_start"]


@dataclass
class DemoStats:
    submitted: int = 0
    refused: int = 0
    released: int = 0
    review_refused: int = 0
    withdrawn: int = 0
    appeals: int = 0
    notices: int = 0
    deferred: int = 0
    by_scenario: dict[str, int] = field(default_factory=dict)


@dataclass(order=True)
class _Event:
    time: datetime
    seq: int
    kind: str = field(compare=False)
    data: dict[str, Any] = field(compare=False, default_factory=dict)


def _reviewers(svc: Service, holder: str, role: str) -> list[str]:
    reg = svc.register()
    return sorted(
        r.id for r in reg.reviewers.values() if r.organisation == holder and role in r.roles
    )


def fill_year(
    svc: Service,
    seed: int = 2026,
    scale: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
) -> DemoStats:
    """Submit, review, appeal, withdraw and notify a synthetic year on ``svc``."""
    rng = random.Random(seed + 1)
    ids = random.Random(seed + 2)
    svc.new_id = lambda: "r" + "".join(ids.choice("0123456789abcdef") for _ in range(20))
    clock_now = [year_start()]
    svc.clock = lambda: clock_now[0]  # the year's own clock, from its first entry
    for rid, name, org, roles in EXTRA_REVIEWERS:
        if rid not in svc.register().reviewers:
            svc.add_reviewer(rid, name, org, roles)
    plan = plan_year(seed, scale)
    events: list[_Event] = []
    seq = iter(range(10**9))
    for n, (scenario, when) in enumerate(plan):
        doc = document(rng, scenario, n + 1, when)
        events.append(_Event(when, next(seq), "submit", {"doc": doc, "sc": scenario}))
    heapq.heapify(events)
    stats = DemoStats()
    total = len(events)
    svc.auto_publish = False

    def later(ev: _Event, days: tuple[int, int], kind: str, **data: Any) -> None:
        t = ev.time + timedelta(days=rng.randint(*days), hours=rng.randint(0, 6))
        heapq.heappush(events, _Event(t, next(seq), kind, data))

    with svc.submit_together() as batch:
        for ev in _drain(events):
            clock_now[0] = ev.time
            if ev.kind == "submit":
                _submit(batch, ev, stats, later, rng)
                if progress:
                    progress(stats.submitted, total)
                if not events or events[0].kind != "submit":
                    batch.flush()  # what follows reads or changes these requests
                continue
            _step(svc, ev, stats, later, rng)
    svc.ledger.publish()
    svc.auto_publish = True
    # Every release queued a job for its notices; run them as the server's worker would.
    stats.notices = drain(svc).sent + svc.deliver_pending()
    stats.deferred = len(svc.notices(status="deferred"))
    return stats


def _submit(
    batch: SubmitBatch,
    ev: _Event,
    stats: DemoStats,
    later: Callable[..., None],
    rng: random.Random,
) -> None:
    """A request of the year, decided now and recorded with the ones submitted beside it
    (the same log as one by one: each keeps its id and time)."""
    sc: Scenario = ev.data["sc"]
    got = batch.submit(ev.data["doc"])
    stats.submitted += 1
    stats.by_scenario[sc.name] = stats.by_scenario.get(sc.name, 0) + 1
    if got.outcome == "refused":
        stats.refused += 1
        if rng.random() < 0.03:
            later(ev, (3, 20), "appeal", id=got.id, by="requester")
    elif rng.random() < 0.03:
        later(ev, (0, 2), "withdraw", id=got.id, org=sc.requester)
    else:
        later(ev, (0, 12), "review", id=got.id, sc=sc)


def _step(
    svc: Service,
    ev: _Event,
    stats: DemoStats,
    later: Callable[..., None],
    rng: random.Random,
) -> None:
    """Any other event of the year: a review, withdrawal, appeal, deferral lifted or renewed."""
    if ev.kind == "review":
        rec = svc.get(ev.data["id"])
        if rec.stage != "decided":
            return
        release = rng.random() < ev.data["sc"].release_rate
        reviewer = rng.choice(_reviewers(svc, rec.holder, "release_reviewer"))
        facts = _holder_facts(rng, rec)
        # record_review: the record is read again below only when it is needed
        try:
            svc.record_review(rec.id, reviewer, release, facts=facts if release else None)
        except ConflictError:  # nothing may go on the holder's record: refuse instead
            release = False
            svc.record_review(rec.id, reviewer, False)
        if release:
            # the notices are written now, as a server's worker would write them
            record_queued(svc)
            stats.released += 1
            if rng.random() < 0.03:
                later(ev, (10, 40), "appeal", id=rec.id, by="subject")
            _follow_up(svc, ev, rec.id, later, rng)
        else:
            stats.review_refused += 1
            if rng.random() < 0.25:
                later(ev, (3, 20), "appeal", id=rec.id, by="requester")
    elif ev.kind == "withdraw":
        svc.withdraw(ev.data["id"], ev.data["org"])
        stats.withdrawn += 1
    elif ev.kind == "appeal":
        rec = svc.appeal(ev.data["id"], ev.data["by"], "The decision was wrong.")
        stats.appeals += 1
        later(ev, (5, 25), "decide_appeal", id=rec.id)
    elif ev.kind == "decide_appeal":
        rec = svc.get(ev.data["id"])
        who = [r for r in _reviewers(svc, rec.holder, "appeal_reviewer") if r != rec.reviewer]
        if not who:
            return
        # Only a refusal the policy would have allowed can be overturned into a release.
        can_release = (
            rec.appeal is not None
            and rec.appeal.prior_outcome == "refused"
            and (rec.decision.get("outcome") == "review")
        )
        uphold = not (can_release and rng.random() < 0.5) and not (
            rec.appeal is not None and rec.appeal.by == "subject" and rng.random() < 0.2
        )
        if rec.appeal is not None and rec.appeal.prior_outcome == "refused" and not can_release:
            uphold = True
        decider = rng.choice(who)
        releases = not uphold and rec.appeal is not None and rec.appeal.prior_outcome == "refused"
        try:
            svc.record_appeal_decision(
                rec.id, decider, uphold, facts=_holder_facts(rng, rec) if releases else None
            )
        except ConflictError:  # nothing may go on the holder's record: the refusal stands
            svc.record_appeal_decision(rec.id, decider, True)
            releases = False
        record_queued(svc)
        if releases:
            _follow_up(svc, ev, rec.id, later, rng)
    elif ev.kind in ("lift", "renew"):
        rec = svc.get(ev.data["id"])
        if not any(n_.status == "deferred" for n_ in rec.notices):
            return
        decider = _reviewers(svc, rec.holder, "release_reviewer")[0]
        if ev.kind == "lift":
            svc.lift_deferral(rec.id, decider)
            record_queued(svc)
        else:
            span = rng.randint(30, 89)
            until = (ev.time + timedelta(days=span)).date().isoformat()
            svc.renew_deferral(rec.id, decider, until)
            later(ev, (20, min(60, span - 1)), "lift", id=rec.id)  # by the new review date


def _follow_up(
    svc: Service, ev: _Event, rid: str, later: Callable[..., None], rng: random.Random
) -> None:
    """A release's deferral, if any, lifted or renewed by its review date, as a holder must
    (an auditor fails one left to lapse): most lifted early, some renewed, the rest lifted
    when due."""
    deferred = svc.notices(rid, status="deferred")
    if not deferred:
        return
    due = _days_to(ev, deferred[0].review_date)
    roll = rng.random()
    if roll < 0.5:
        later(ev, (min(30, due), min(80, due)), "lift", id=rid)
    elif roll < 0.7:
        later(ev, (min(60, due), min(85, due)), "renew", id=rid)
    else:
        later(ev, (max(due - 7, 0), due), "lift", id=rid)


def year_start() -> datetime:
    """The demo year's first moment: its instance's clock until the year begins."""
    return datetime(YEAR, 1, 1, tzinfo=UTC)


def _days_to(ev: _Event, review_date: str | None) -> int:
    """Whole days from ``ev`` to the end of ``review_date`` (a deferral's), at least 1."""
    if review_date is None:
        return 1
    end = datetime.fromisoformat(review_date).replace(tzinfo=UTC)
    return max((end - ev.time).days, 1)


def _holder_facts(rng: random.Random, rec: RequestRecord) -> list[dict[str, Any]]:
    """What the holder's reviewer says about each subject before a release.

    Each consent claim is checked against the holder's own record (here nine in ten hold
    up), and now and then the holder knows better than the requester that a person is a
    victim or witness of crime.
    """
    facts: list[dict[str, Any]] = []
    for s in rec.subjects:
        said: dict[str, Any] = {}
        if s.consent and rng.random() < 0.9:
            said["consent"] = True
        if not s.is_victim_or_witness and rng.random() < 0.02:
            said["is_victim_or_witness"] = True
        if said:
            facts.append({"subject": s.position, **said})
    return facts


def _drain(events: list[_Event]) -> Iterator[_Event]:
    end = datetime(YEAR + 1, 1, 1, tzinfo=UTC)
    while events:
        ev = heapq.heappop(events)
        if ev.time >= end:
            continue  # the year is over; what is still pending stays pending
        yield ev
