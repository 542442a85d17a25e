"""The statistics' Tally asks the same ReleaseIndex the auditor's checks ask.

"Released under an agreement" has one definition (:class:`ReleaseIndex`). These tests pin
that the published figure ``ended_not_withdrawn`` still counts exactly what the rule the
Tally used to keep on its own counted (a reference written out below), that the Tally's
index answers as the auditor's does for every agreement, and that the Tally's state reads
and writes the forms saved before: with ``release_days`` (written unchanged) and the older
form without it, completed from the auditor's replay by a copy of its index.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from carewall.audit.agreements import AgreementReplay
from carewall.deadlines import agreement_withdraw_by
from carewall.policy.agreements import Released, ReleaseIndex
from carewall.statistics import Tally, compute

ORIGIN = "carewall.test/statistics"
DAYS = ["2025-12-31", "2026-01-01", "2026-02-10", "2026-03-03", "2026-03-04", "2026-04-02",
        "2026-04-03", "2026-06-30"]  # fmt: skip
ENDS = [None, "2026-01-01", "2026-02-10", "2026-03-03", "2026-04-02", "2026-02-30"]


def release(time: str, holder: str = "h1", recipient: str = "r1", purpose: str = "p1",
            n: int = 1) -> dict[str, Any]:  # fmt: skip
    return {
        "kind": "release", "time": time, "request": f"r{n}", "holder": holder,
        "recipient": recipient, "requester": recipient, "recipient_function": "police",
        "requester_function": "police", "purpose": purpose, "subjects": n,
        "categories": [f"c{n % 3}", "name"],
    }  # fmt: skip


def agreement(id: str, action: str, time: str, end: str | None, **terms: str) -> dict[str, Any]:
    return {
        "kind": "agreement", "time": time, "agreement": id, "action": action, "due": None,
        "holder": "h1", "recipient": "r1", "purpose": "p1", "start": "2026-01-01", "end": end,
    } | terms  # fmt: skip


def clock(time: str) -> dict[str, Any]:
    return {"kind": "policy", "time": time}


# What the Tally itself kept before, written out: (holder, recipient, purpose) -> days, and
# each agreement's latest action and terms; counted as its _ended counted.
def reference_ended(log: list[dict[str, Any]]) -> int:
    days: dict[tuple[str, str, str], set[str]] = {}
    latest: dict[str, dict[str, Any]] = {}
    for e in log:
        if e["kind"] == "release":
            days.setdefault((e["holder"], e["recipient"], e["purpose"]), set()).add(e["time"][:10])
        elif e["kind"] == "agreement":
            latest[e["agreement"]] = e
    today = max((e["time"] for e in log), default="")[:10]
    count = 0
    for e in latest.values():
        if e["action"] != "registered" or not e["end"]:
            continue
        try:
            late = agreement_withdraw_by(e["end"]) < today
        except ValueError:
            continue
        went = days.get((e["holder"], e["recipient"], e["purpose"]), set())
        count += late and any(e["start"] <= d <= e["end"] for d in went)
    return count


STEP = st.one_of(  # releases and agreements mostly between the same parties
    st.builds(
        lambda day, h, r, p, n: release(f"{day}T10:00:00Z", h, r, p, n),
        st.sampled_from(DAYS[:5]), st.sampled_from(["h1"] * 4 + ["h2"]),
        st.sampled_from(["r1"] * 4 + ["r2"]), st.sampled_from(["p1"] * 4 + ["p2"]),
        st.integers(1, 4),
    ),
    st.builds(
        lambda id, action, day, start, end, r: agreement(
            id, action, f"{day}T09:00:00Z", end, start=start, recipient=r
        ),
        st.sampled_from(["a1", "a2", "a3"]),
        st.sampled_from(["registered"] * 4 + ["withdrawn", "refused", "destroyed"]),
        st.sampled_from(DAYS), st.sampled_from(DAYS[:4]), st.sampled_from(ENDS),
        st.sampled_from(["r1"] * 4 + ["r2"]),
    ),
    st.builds(lambda day: clock(f"{day}T12:00:00Z"), st.sampled_from(DAYS)),
)  # fmt: skip
# Logs that end on a day the agreements' ends and their grace may have passed.
LOGS = st.builds(
    lambda steps, day: [*steps, clock(f"{day}T12:00:00Z")],
    st.lists(STEP, min_size=4, max_size=30),
    st.sampled_from(["2026-03-04", "2026-04-02", "2026-04-03", "2026-06-30", "2027-01-01"]),
)


def fed(log: list[dict[str, Any]], tally: Tally | None = None) -> Tally:
    tally = tally or Tally()
    for e in log:
        tally.feed(e)
    return tally


def ended(tally: Tally, size: int) -> int:
    return dict(tally.result(ORIGIN, size).agreements)["ended_not_withdrawn"]


def replay_of(log: list[dict[str, Any]]) -> AgreementReplay:
    """The auditor's agreements and releases for ``log`` (each agreement's latest entry)."""
    rp = AgreementReplay()
    for i, e in enumerate(log):
        if e["kind"] == "release":
            rp.observe(i, e)
        elif e["kind"] == "agreement":
            rp.agreements[e["agreement"]] = e
    return rp


@settings(max_examples=300)
@given(log=LOGS, data=st.data())
def test_the_figure_counts_as_before_and_the_index_answers_as_the_auditors(
    log: list[dict[str, Any]], data: st.DataObject
) -> None:
    tally = fed(log)
    want = reference_ended(log)
    assert ended(tally, len(log)) == want
    doc = compute(log, origin=ORIGIN, size=len(log))
    assert dict(doc.agreements)["ended_not_withdrawn"] == want
    auditors = replay_of(log).releases
    for e in log:
        if e["kind"] == "agreement":
            went = auditors.under(e)
            assert tally.release_index.under(e).releases == went.releases
            assert tally.release_index.any_under(e) == (went.releases > 0)
    # carried as the state file carries it, cut anywhere: in today's form ...
    cut = data.draw(st.integers(0, len(log)), label="cut")
    saved = json.loads(json.dumps(fed(log[:cut]).to_json()))
    assert Tally.from_json(saved).to_json() == saved
    assert fed(log[cut:], Tally.from_json(saved)).result(ORIGIN, len(log)) == doc
    # ... and in the form from before agreements' terms and releases were kept
    del saved["agreement_terms"], saved["release_days"]
    old = Tally.from_json(saved)
    assert old.needs_terms
    rp = replay_of(log[:cut])
    before = rp.releases.to_json()
    rp.complete(old)
    assert not old.needs_terms
    assert fed(log[cut:], old).result(ORIGIN, len(log)) == doc
    assert rp.releases.to_json() == before  # a copy: the tally's feeding left it alone


# A tally's state as the code before the ReleaseIndex was shared wrote it, for LOG.
LOG = [
    clock("2026-01-01T09:00:00Z"),
    agreement("a1", "registered", "2026-01-01T10:00:00Z", "2026-03-03"),
    agreement("a2", "registered", "2026-01-02T10:00:00Z", None, recipient="r2"),
    release("2026-03-02T10:00:00Z"),
    release("2026-03-02T11:00:00Z"),
    release("2026-03-05T10:00:00Z", recipient="r2"),
    release("2026-03-04T10:00:00Z", purpose="p2"),
]
SAVED = {
    "functions": {}, "requests": [],
    "counts": {"requester_function": {}, "holder": {}, "purpose": {}, "legal_basis": {},
               "month": {}},
    "releases": 4, "to_immigration": 0,
    "agreements": {"a1": ["registered", ""], "a2": ["registered", ""]},
    "agreement_counts": {"registered": 2},
    "agreement_terms": {"a1": ["h1", "r1", "p1", "2026-01-01", "2026-03-03"],
                        "a2": ["h1", "r2", "p1", "2026-01-01", ""]},
    "release_days": [["h1", "r1", "p1", ["2026-03-02"]], ["h1", "r1", "p2", ["2026-03-04"]],
                     ["h1", "r2", "p1", ["2026-03-05"]]],
    "latest_time": "2026-03-05T10:00:00Z",
}  # fmt: skip


def test_the_state_is_written_as_before_and_a_state_written_before_still_counts() -> None:
    assert fed(LOG).to_json() == SAVED
    late = [clock("2026-04-03T09:00:00Z")]  # a day past a1's end and its grace
    full = fed([*LOG, *late])
    assert ended(full, len(LOG) + 1) == 1
    resumed = fed(late, Tally.from_json(copy.deepcopy(SAVED)))
    assert resumed.result(ORIGIN, len(LOG) + 1) == full.result(ORIGIN, len(LOG) + 1)
    older = {k: v for k, v in SAVED.items() if k not in ("agreement_terms", "release_days")}
    tally = Tally.from_json(older)
    assert tally.needs_terms  # not completed, it could not count a1 (hence complete):
    assert ended(fed(late, Tally.from_json(older)), len(LOG) + 1) == 0
    replay_of(LOG).complete(tally)
    assert fed(late, tally).result(ORIGIN, len(LOG) + 1) == full.result(ORIGIN, len(LOG) + 1)


def test_the_index_keeps_its_json_form_and_its_copy_is_its_own() -> None:
    index = ReleaseIndex()
    for e in LOG:
        index.feed(e)
    rows = [
        ["h1", "r1", "p1", "2026-03-02", 2, 2, ["c1", "name"]],
        ["h1", "r1", "p2", "2026-03-04", 1, 1, ["c1", "name"]],
        ["h1", "r2", "p1", "2026-03-05", 1, 1, ["c1", "name"]],
    ]
    assert index.to_json() == rows
    assert ReleaseIndex.from_json(json.loads(json.dumps(rows))).to_json() == rows
    twin = index.copy()
    twin.feed(release("2026-03-02T12:00:00Z", n=2))
    assert index.to_json() == rows
    terms = {"holder": "h1", "recipient": "r1", "purpose": "p1", "start": "2026-01-01"}
    assert twin.under(terms | {"end": "2026-03-03"}).releases == 3
    assert twin.under(terms | {"end": None}).categories == ("c1", "c2", "name")
    assert not index.any_under(terms | {"end": "2026-03-01"})
    assert not index.any_under(terms | {"holder": "h2", "end": None})
    counted = ReleaseIndex()
    counted.add(("h1", "r1", "p1"), "2026-03-02")  # as the statistics add: entries only
    assert counted.under(terms | {"end": None}) == Released(1, 0, ())
