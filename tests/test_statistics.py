"""The public statistics (carewall.statistics) on hand-built logs: every definition, exactly.

Each entry below has its kind's exact shape (checked against the published schema), so
the statistics are computed from what a carewall log really holds.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carewall.audit.shape import check_shape
from carewall.audit.statistics import differences, statistics_url
from carewall.ledger.canonical import canonical
from carewall.statistics import (
    DIMENSIONS,
    FIGURES,
    OUTCOMES,
    Statistics,
    StatisticsError,
    Tally,
    compute,
)

ORIGIN = "carewall.test/statistics"
HASH = "sha256:" + "ab" * 32
T = "2026-03-02T09:00:00Z"


def rid(n: int) -> str:
    return f"r{n:020x}"


def base(kind: str, time: str = T) -> dict[str, Any]:
    return {"v": 1, "kind": kind, "time": time}


def policy() -> dict[str, Any]:
    return base("policy") | {
        "policy": HASH,
        "pledge": HASH,
        "rules": ["pledge/never-nationality"],
        "change": "init",
        "text": "",
    }


def org(id: str, function: str) -> dict[str, Any]:
    return base("organisation") | {
        "id": id,
        "name": id.title(),
        "function": function,
        "change": "add",
    }


def facts(
    n: int,
    requester: str = "met-police",
    requester_function: str = "police",
    holder: str = "islington-council",
    purpose: str = "prevention_detection_of_crime",
    legal_basis: str = "dpa2018_sch2_p1_para2_crime",
) -> dict[str, Any]:
    return {
        "request": rid(n),
        "holder": holder,
        "holder_function": "local_authority",
        "requester": requester,
        "requester_function": requester_function,
        "purpose": purpose,
        "legal_basis": legal_basis,
        "other_bases": [],
        "offence": "theft_act_1968_s1",
        "court_order": False,
        "onward_recipients": [],
        "categories": ["name"],
        "subjects": 1,
        "victims_or_witnesses": 0,
    }


def request(n: int, time: str = T, **kw: str) -> dict[str, Any]:
    group = {"is_child": False, "is_victim_or_witness": False, "consent": False, "subjects": 1}
    return base("request", time) | facts(n, **kw) | {"groups": [group], "subjects_root": "0" * 64}


def decision(n: int, outcome: str) -> dict[str, Any]:
    rule = "local/police-suspect" if outcome == "review" else "default-deny"
    return base("decision") | {
        "request": rid(n),
        "outcome": outcome,
        "categories": {"name": {"outcome": outcome, "rules": [rule]}},
        "rules": [rule],
        "policy": HASH,
    }


def review(n: int, outcome: str) -> dict[str, Any]:
    group = {"is_child": False, "is_victim_or_witness": False, "consent": False, "subjects": 1}
    released = outcome == "released"
    return base("review") | {
        "request": rid(n),
        "outcome": outcome,
        "reviewer": "dpo-islington",
        "categories": ["name"] if released else [],
        "groups": [group] if released else [],
        "corrected": 0,
    }


def release(n: int, recipient: str = "met-police", function: str = "police") -> dict[str, Any]:
    return (
        base("release")
        | facts(n, requester=recipient, requester_function=function)
        | {
            "is_child": False,
            "is_victim_or_witness": False,
            "consent": False,
            "recipient": recipient,
            "recipient_function": function,
            "reviewer": "dpo-islington",
            "policy": HASH,
            "file": None,
        }
    )


def appeal(n: int, by: str, stage: str) -> dict[str, Any]:
    reviewer = None if stage == "lodged" else "appeals-islington"
    return base("appeal") | {"request": rid(n), "by": by, "stage": stage, "reviewer": reviewer}


def withdrawal(n: int) -> dict[str, Any]:
    return base("withdrawal") | {"request": rid(n), "by": "met-police"}


def stats(entries: list[dict[str, Any]]) -> Statistics:
    return compute(entries, origin=ORIGIN, size=len(entries))


def every_outcome() -> list[dict[str, Any]]:
    """One request in each outcome, with appeals that must not change any of them."""
    return [
        policy(),
        org("met-police", "police"),
        request(1), decision(1, "review"), review(1, "released"), release(1),
        request(2), decision(2, "review"), review(2, "refused"),
        request(3), decision(3, "refused"),
        request(4), decision(4, "review"), withdrawal(4),
        request(5), decision(5, "review"),
        request(6),
        # a refused review appealed and overturned: the appeal reviewer's review and releases
        request(7), decision(7, "review"), review(7, "refused"),
        appeal(7, "requester", "lodged"), appeal(7, "requester", "overturned"),
        review(7, "released"), release(7),
        # a release appealed by its subject and overturned: the data was still sent
        request(8), decision(8, "review"), review(8, "released"), release(8),
        appeal(8, "subject", "lodged"), appeal(8, "subject", "overturned"),
        # a refusal appealed and upheld stays refused
        request(9), decision(9, "refused"), appeal(9, "requester", "lodged"),
        appeal(9, "requester", "upheld"),
    ]  # fmt: skip


def test_the_hand_built_entries_have_their_kinds_exact_shapes() -> None:
    built = [*every_outcome(), org("home-office-ie", "immigration_enforcement")]
    for entry in [*built, release(1, "home-office-ie", "immigration_enforcement")]:
        check_shape(canonical(entry))


def test_every_outcome_is_counted_as_defined() -> None:
    s = stats(every_outcome())
    assert s.table("outcome") == (
        ("released", 3),
        ("refused_by_reviewer", 1),
        ("refused_automatically", 2),
        ("withdrawn", 1),
        ("awaiting_review", 1),
        ("awaiting_decision", 1),
    )
    assert s.figures() == (
        ("received", 9),
        ("refused", 3),
        ("released", 3),
        ("releases", 3),
        ("releases_to_immigration_enforcement", 0),
    )
    assert (s.origin, s.size) == (ORIGIN, len(every_outcome()))


def test_a_size_that_cuts_a_transaction_leaves_the_request_awaiting_its_decision() -> None:
    log = [policy(), request(1), decision(1, "refused")]
    assert compute(log[:2], origin=ORIGIN, size=2).table("outcome")[-1] == ("awaiting_decision", 1)
    assert stats(log).table("outcome")[2] == ("refused_automatically", 1)


def test_releases_to_immigration_enforcement_by_stated_or_registered_function() -> None:
    log = [
        policy(),
        org("met-police", "police"),
        request(1), decision(1, "review"), review(1, "released"),
        release(1, "home-office-ie", "police"),  # registered later: not yet known
        org("home-office-ie", "immigration_enforcement"),
        release(1, "home-office-ie", "police"),  # registered as immigration enforcement
        release(1, "somewhere-else", "immigration_enforcement"),  # stated function
        release(1),  # an ordinary release
        release(99, "home-office-ie", "police"),  # about no logged request: still a release
    ]  # fmt: skip
    s = stats(log)
    assert s.releases == 5
    assert s.releases_to_immigration_enforcement == 3
    assert s.released == 1  # requests, not release entries


def test_months_run_from_first_to_last_with_empty_months_as_zero() -> None:
    log = [
        policy(),
        request(1, "2026-01-31T23:59:59Z"),
        request(2, "2026-02-01T00:00:00Z"),
        request(3, "2026-02-28T12:00:00Z"),
        request(4, "2027-01-01T00:00:00Z"),
    ]
    months = stats(log).table("month")
    assert months[:3] == (("2026-01", 1), ("2026-02", 2), ("2026-03", 0))
    assert months[-2:] == (("2026-12", 0), ("2027-01", 1))
    assert len(months) == 13


def test_tables_list_most_requests_first_then_by_key() -> None:
    log = [policy()]
    holders = ["b-council", "a-council", "c-trust", "c-trust", "a-council", "z-school"]
    for n, holder in enumerate(holders):
        log.append(request(n, holder=holder, requester_function="police" if n else "health"))
    s = stats(log)
    assert s.table("holder") == (
        ("a-council", 2),
        ("c-trust", 2),
        ("b-council", 1),
        ("z-school", 1),
    )
    assert s.table("requester_function") == (("police", 5), ("health", 1))
    assert s.table("purpose") == (("prevention_detection_of_crime", 6),)
    assert s.table("legal_basis") == (("dpa2018_sch2_p1_para2_crime", 6),)
    assert [k for k, _ in s.table("outcome")] == list(OUTCOMES)  # zeros included, in order


def test_an_empty_log_has_empty_tables_and_zero_figures() -> None:
    s = compute([], origin=ORIGIN, size=0)
    assert all(n == 0 for _, n in s.figures())
    assert all(rows == () for d, rows in s.tables if d != "outcome")
    assert Statistics.from_json(s.to_json()) == s


def test_a_request_id_logged_twice_is_two_requests_and_later_entries_apply_to_the_latest() -> None:
    s = stats([policy(), request(1), decision(1, "refused"), request(1), decision(1, "review")])
    assert s.received == 2
    assert dict(s.table("outcome"))["refused_automatically"] == 1
    assert dict(s.table("outcome"))["awaiting_review"] == 1


def test_json_round_trip_and_its_shape() -> None:
    s = stats(every_outcome())
    doc = json.loads(json.dumps(s.to_json()))
    assert doc["v"] == 1 and doc["origin"] == ORIGIN and doc["size"] == s.size
    assert list(doc["firewall"]) == list(FIGURES)
    assert list(doc["tables"]) == list(DIMENSIONS)
    assert doc["tables"]["outcome"][0] == {"key": "released", "count": 3}
    assert Statistics.from_json(doc) == s


def test_csv_holds_every_figure_and_row_with_its_checkpoint() -> None:
    s = stats(every_outcome())
    rows = list(csv.reader(io.StringIO(s.to_csv())))
    assert rows[0] == ["origin", "size", "dimension", "key", "count"]
    assert {(r[0], r[1]) for r in rows[1:]} == {(ORIGIN, str(s.size))}
    expected = [("firewall", k, n) for k, n in s.figures()]
    expected += [(d, k, n) for d, table in s.tables for k, n in table]
    expected += [("agreements", k, n) for k, n in s.agreements]
    assert [(r[2], r[3], int(r[4])) for r in rows[1:]] == expected


def test_csv_never_starts_a_cell_with_a_formula() -> None:
    s = compute([], origin="=HYPERLINK(1)", size=0)
    rows = list(csv.reader(io.StringIO(s.to_csv())))
    assert rows[1][0] == "'=HYPERLINK(1)"


def _doc() -> dict[str, Any]:
    return stats(every_outcome()).to_json()


def _set(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(_doc())
    *parents, last = path.split(".")
    target: Any = doc
    for p in parents:
        target = target[int(p)] if p.isdigit() else target[p]
    if value is DELETE:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return doc


DELETE = object()
MALFORMED = {
    "not an object": [],
    "v missing": _set("v", DELETE),
    "v 2": _set("v", 2),
    "v true": _set("v", True),
    "v float": _set("v", 1.0),
    "extra field": _set("extra", 1),
    "origin not a string": _set("origin", 5),
    "size negative": _set("size", -1),
    "figure missing": _set("firewall.refused", DELETE),
    "figure a string": _set("firewall.received", "9"),
    "figure a bool": _set("firewall.releases", False),
    "figure a float": _set("firewall.released", 3.0),
    "table missing": _set("tables.month", DELETE),
    "table not a list": _set("tables.holder", {}),
    "row extra field": _set("tables.outcome.0", {"key": "released", "count": 3, "x": 1}),
    "row count negative": _set("tables.outcome.0", {"key": "released", "count": -3}),
    "unknown outcome": _set("tables.outcome.0", {"key": "leaked", "count": 3}),
    "holder not an id": _set("tables.holder.0", {"key": "<b>Council</b>", "count": 9}),
    "function with a newline": _set("tables.requester_function.0", {"key": "police\n", "count": 9}),
    "month 13": _set("tables.month.0", {"key": "2026-13", "count": 9}),
    "key twice": _set("tables.outcome.1", {"key": "released", "count": 3}),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_document_is_refused_naming_the_field(name: str) -> None:
    with pytest.raises(StatisticsError) as e:
        Statistics.from_json(MALFORMED[name])
    assert "<b>" not in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("entries", "size", "words"),
    [
        ([policy(), base("gossip")], 2, "entry 1: field 'kind'"),
        ([policy(), request(1) | {"holder": 7}], 2, "entry 1: field 'holder'"),
        ([policy(), request(1, "20x6-01-01T00:00:00Z")], 2, "entry 1: field 'time'"),
        ([policy(), request(1), decision(1, "maybe")], 3, "entry 2: field 'outcome'"),
        ([policy()], 2, "1 entries were given for size 2"),
        ([policy(), policy()], 1, "more than 1 entries"),
    ],
)
def test_an_entry_that_cannot_be_counted_is_named(
    entries: list[dict[str, Any]], size: int, words: str
) -> None:
    with pytest.raises(StatisticsError, match=words):
        compute(entries, origin=ORIGIN, size=size)


def test_a_tally_refuses_a_malformed_entry_without_counting_any_of_it() -> None:
    tally = Tally()
    with pytest.raises(StatisticsError):
        tally.feed(request(1) | {"time": "bad"})
    with pytest.raises(StatisticsError):
        tally.feed(release(1) | {"recipient": None})
    assert tally.result(ORIGIN, 0) == compute([], origin=ORIGIN, size=0)


class _Str(str):
    """A str that is not exactly ``str``: read as one all the same."""


@pytest.mark.parametrize(
    ("entry", "broken", "named"),
    [
        (request(1), ["time", "request", "holder"], "time"),
        (request(1), ["legal_basis", "request", "purpose"], "request"),
        (request(1), ["legal_basis", "purpose", "holder", "requester_function"],
         "requester_function"),
        (request(1), ["legal_basis", "purpose"], "purpose"),
        (decision(1, "refused"), ["outcome", "request"], "request"),
        (decision(1, "refused"), ["outcome"], "outcome"),
        (release(1), ["requester_function", "requester", "recipient"], "recipient"),
        (release(1), ["requester_function", "recipient_function"], "recipient_function"),
        (withdrawal(1), ["request"], "request"),
    ],
)  # fmt: skip
def test_the_first_malformed_field_is_named_and_str_subclasses_are_read(
    entry: dict[str, Any], broken: list[str], named: str
) -> None:
    with pytest.raises(StatisticsError, match=f"field '{named}' is missing or not a string"):
        Tally().feed(entry | {f: 7 for f in broken})
    plain, subclassed = Tally(), Tally()
    plain.feed(entry)
    subclassed.feed({k: _Str(v) if type(v) is str else v for k, v in entry.items()})
    assert subclassed.to_json() == plain.to_json()


# ----- properties over random logs -------------------------------------------------------

STEPS = st.lists(
    st.tuples(
        st.sampled_from(["request", "refused", "review", "reviewed-refused", "reviewed-released",
                         "release", "release-ie", "withdrawal", "appeal", "org-ie"]),
        st.integers(0, 5),
        st.sampled_from(["2025-12-30T10:00:00Z", "2026-01-02T10:00:00Z", "2026-04-02T10:00:00Z"]),
        st.sampled_from(["police", "health", "welfare"]),
    ),
    max_size=40,
)  # fmt: skip


def build(steps: list[tuple[str, int, str, str]]) -> list[dict[str, Any]]:
    out = [policy()]
    for what, n, time, function in steps:
        out.append(
            {
                "request": request(n, time, requester_function=function, holder=f"h{n % 3}"),
                "refused": decision(n, "refused"),
                "review": decision(n, "review"),
                "reviewed-refused": review(n, "refused"),
                "reviewed-released": review(n, "released"),
                "release": release(n),
                "release-ie": release(n, "home-office-ie", "police"),
                "withdrawal": withdrawal(n),
                "appeal": appeal(n, "requester", "lodged"),
                "org-ie": org("home-office-ie", "immigration_enforcement"),
            }[what]
        )
    return out


@settings(max_examples=200, deadline=None)
@given(steps=STEPS, data=st.data())
def test_every_table_adds_up_and_a_tally_resumes_from_its_json(
    steps: list[tuple[str, int, str, str]], data: st.DataObject
) -> None:
    log = build(steps)
    s = stats(log)
    for _, rows in s.tables:
        assert sum(n for _, n in rows) == s.received
    outcomes = dict(s.table("outcome"))
    waiting = outcomes["withdrawn"] + outcomes["awaiting_review"] + outcomes["awaiting_decision"]
    assert s.refused + s.released + waiting == s.received
    assert s.releases_to_immigration_enforcement <= s.releases
    assert Statistics.from_json(json.loads(json.dumps(s.to_json()))) == s
    # split anywhere, carried as JSON (as the auditor's state file carries it)
    cut = data.draw(st.integers(0, len(log)), label="cut")
    first = Tally()
    for entry in log[:cut]:
        first.feed(entry)
    resumed = Tally.from_json(json.loads(json.dumps(first.to_json())))
    for entry in log[cut:]:
        resumed.feed(entry)
    assert resumed.result(ORIGIN, len(log)) == s
    assert compute(log[:cut], origin=ORIGIN, size=cut) == first.result(ORIGIN, cut)


# ----- agreements ended and not withdrawn ---------------------------------------------------

LATE = "2026-04-03T09:00:00Z"  # the day after 2026-03-03 + AGREEMENT_END_GRACE_DAYS
LAST = "2026-04-02T23:59:59Z"  # the last day to withdraw it


def agreement(action: str, time: str = T, **terms: Any) -> dict[str, Any]:
    """The council's agreement with the police, to 2026-03-03 (``release(n)`` is under it)."""
    withdrawn = action == "withdrawn"
    return base("agreement", time) | {
        "agreement": "islington-met-police-isa", "action": action,
        "holder": "islington-council", "holder_function": "local_authority",
        "recipient": "met-police", "recipient_function": "police",
        "purpose": "prevention_detection_of_crime", "legal_basis": "dpa2018_sch2_p1_para2_crime",
        "other_bases": [], "offence": "theft_act_1968_s1", "onward_recipients": [],
        "categories": ["name"], "children": True, "victims_or_witnesses": False,
        "consent_required": False, "start": "2026-01-01", "end": "2026-03-03", "rules": [],
        "policy": HASH, "text": None, "releases": 1 if withdrawn else None,
        "subjects": 1 if withdrawn else None, "released": ["name"] if withdrawn else [],
        "due": "2026-05-03" if withdrawn else None, "certificate": None,
    } | terms  # fmt: skip


def _released_under(
    *after: dict[str, Any], action: str = "registered", **terms: Any
) -> list[dict[str, Any]]:
    """The agreement, one release under it on 2026-03-02, then ``after``."""
    return [policy(), agreement(action, **terms), request(1), release(1), *after]


ENDED = {
    "ended, released under, not withdrawn": (_released_under(request(2, LATE)), 1),
    "on the last day to withdraw it": (_released_under(request(2, LAST)), 0),
    "nothing released under it": ([policy(), agreement("registered"), request(2, LATE)], 0),
    "withdrawn in time": (
        _released_under(agreement("withdrawn", "2026-04-01T09:00:00Z"), request(2, LATE)),
        0,
    ),
    "withdrawn late": (_released_under(agreement("withdrawn", LATE)), 0),
    "released the day after its end": (_released_under(request(2, LATE), end="2026-03-01"), 0),
    "released to another recipient": (
        _released_under(request(2, LATE), recipient="city-police"),
        0,
    ),
    "no end": (_released_under(request(2, LATE), end=None), 0),
    "refused": (
        _released_under(
            request(2, LATE), action="refused", rules=["pledge/no-immigration-offence"]
        ),
        0,
    ),
    "registered after the release, covering its day": (
        [policy(), request(1), release(1), agreement("registered", LATE)],
        1,
    ),
}


@pytest.mark.parametrize("case", ENDED)
def test_an_agreement_ended_with_releases_under_it_and_not_withdrawn_is_counted(case: str) -> None:
    log, want = ENDED[case]
    for entry in log:
        check_shape(canonical(entry))
    s = stats(log)
    agreed = dict(s.agreements)
    assert agreed["ended_not_withdrawn"] == want
    assert agreed["destruction_overdue"] == 0  # an ended agreement is not an overdue destruction
    assert Statistics.from_json(json.loads(json.dumps(s.to_json()))) == s
    for cut in range(len(log) + 1):  # carried as JSON, as the auditor's state file carries it
        first = Tally()
        for entry in log[:cut]:
            first.feed(entry)
        resumed = Tally.from_json(json.loads(json.dumps(first.to_json())))
        for entry in log[cut:]:
            resumed.feed(entry)
        assert resumed.result(ORIGIN, len(log)) == s


def test_the_agreements_figures_keep_their_order_with_the_new_one_last() -> None:
    s = stats(ENDED["ended, released under, not withdrawn"][0])
    assert [k for k, _ in s.agreements] == [
        "registered", "refused", "withdrawn", "destruction_requested", "destroyed",
        "destruction_overdue", "ended_not_withdrawn",
    ]  # fmt: skip
    rows = list(csv.reader(io.StringIO(s.to_csv())))
    assert rows[-1] == [ORIGIN, str(s.size), "agreements", "ended_not_withdrawn", "1"]


# ----- the auditor's comparison -------------------------------------------------------------


def test_the_auditor_names_every_differing_figure() -> None:
    log = stats(every_outcome())
    doc = log.to_json()
    doc["size"] += 1
    doc["firewall"]["releases_to_immigration_enforcement"] = 0  # the same: not named
    doc["firewall"]["released"] = 2
    doc["tables"]["holder"] = [{"key": "islington-council", "count": 8}, {"key": "dfe", "count": 1}]
    doc["tables"]["month"].reverse()  # one row: the same order
    doc["tables"]["outcome"].reverse()
    assert differences(log, Statistics.from_json(doc)) == [
        f"it covers size {log.size + 1}, not {log.size}",
        "firewall figure released is 2 published but 3 in the log",
        "holder 'islington-council' is 8 published but 9 in the log",
        "holder 'dfe' is published (1) but not in the log",
        "table outcome lists its rows in another order than the definition's",
    ]
    doc = log.to_json()
    doc["origin"] = "elsewhere"
    doc["tables"]["purpose"] = []
    assert differences(log, Statistics.from_json(doc)) == [
        "its origin is not the log's",
        "purpose 'prevention_detection_of_crime' (9 in the log) is not published",
    ]
    assert differences(log, Statistics.from_json(log.to_json())) == []


@pytest.mark.parametrize(
    "url",
    [
        "https://cw.example/x",
        "https://cw.example/x/",
        "https://cw.example/x/log",
        "https://cw.example/x/log/",
    ],
)
def test_the_statistics_are_found_beside_the_log(url: str) -> None:
    assert statistics_url(url) == "https://cw.example/x/statistics.json"
