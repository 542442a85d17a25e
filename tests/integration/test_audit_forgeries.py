"""Forged logs fail ``carewall audit``, and the finding names the forged entry.

Run through the CLI against a real uvicorn server. The named cases are the issue's; the
property test draws one forgery at a time from the whole catalogue of ``audit_mutations``
(one field of one entry dropped, retyped, re-cased, re-valued or added; two entries
swapped; one entry of a transaction left out).
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from audit_mutations import Forgery, catalogue
from audit_serving import Server, audit, findings, make_log, names_entry, running, statement
from audit_support import EXTRA_RULE, full_log
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BUILT = full_log()
Entries = list[dict[str, Any]]
_names = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running(Server()) as s:
        yield s


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("forged")


def run(server: Server, where: Path, entries: list[Any]) -> Result:
    n = next(_names)
    log = make_log(where, f"log{n}", where / f"log{n}.key", entries)
    server.serve(log)
    result = audit(server, log.vkey)
    assert "Traceback" not in result.output
    return result


def first(kind: str, pred: Callable[[dict[str, Any]], bool] = lambda e: True) -> int:
    return next(i for i, e in enumerate(BUILT.entries) if e["kind"] == kind and pred(e))


def changed(i: int, **changes: Any) -> Entries:
    out = copy.deepcopy(BUILT.entries)
    out[i].update(changes)
    return out


def without(i: int, *fields: str) -> Entries:
    out = copy.deepcopy(BUILT.entries)
    for f in fields:
        del out[i][f]
    return out


RELEASE = first("release")
IMMIGRATION_DECISION = first("decision", lambda e: e["outcome"] == "refused")


def failed_at(result: Result, index: int, words: str) -> None:
    assert result.exit_code == 1, result.output
    lines = findings(result)
    assert any(ln.startswith(f"entry {index} (") and words in ln for ln in lines), lines
    assert "FAILED" in statement(result)
    assert result.stderr.startswith("error: the log failed the audit")


def test_the_true_log_passes(server: Server, logs: Path) -> None:
    result = run(server, logs, BUILT.entries)
    assert result.exit_code == 0, result.output
    assert findings(result) == []
    assert statement(result).endswith(
        "8 requests decided again with the logged policy and all matched; "
        "5 releases, 0 to immigration enforcement."
    )


def test_a_release_to_immigration_enforcement(server: Server, logs: Path) -> None:
    result = run(server, logs, changed(RELEASE, recipient_function="immigration_enforcement"))
    failed_at(result, RELEASE, "releases data to an immigration-enforcement body")
    failed_at(result, RELEASE, "the recipient is not the requester")
    assert "1 to immigration enforcement" in statement(result)

    home_office = changed(
        RELEASE,
        requester="home-office-ie",
        requester_function="immigration_enforcement",
        recipient="home-office-ie",
        recipient_function="immigration_enforcement",
    )
    result = run(server, logs, home_office)
    failed_at(result, RELEASE, "[pledge/no-immigration-recipient")
    failed_at(result, RELEASE, "differ from the request at entry")


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (("purpose",), "lacks the field 'purpose'"),
        (("is_child", "is_victim_or_witness", "consent"), "lacks the field 'is_child'"),
        (("reviewer",), "lacks the field 'reviewer'"),
        (("policy",), "lacks the field 'policy'"),
    ],
)
def test_a_release_lacking_facts(
    server: Server, logs: Path, fields: tuple[str, ...], words: str
) -> None:
    failed_at(run(server, logs, without(RELEASE, *fields)), RELEASE, words)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"requester_function": "Police"}, "field 'requester_function' is not one of"),
        ({"court_order": "false"}, "field 'court_order' has the wrong type (expected boolean)"),
        ({"subjects": "1"}, "field 'subjects' has the wrong type (expected integer)"),
        ({"categories": "name"}, "field 'categories' has the wrong type (expected array)"),
        ({"offence": "Theft_act_1968_s1"}, "field 'offence' is none of the forms"),
        ({"reviewer": "dpo-st-marys\n"}, "field 'reviewer' is not a valid reviewer id"),
        ({"holder": "st-marys-primary "}, "field 'holder' is not a valid organisation id"),
        ({"officer": "DC J. Smith"}, "has an unknown field 'officer'"),
    ],
)
def test_facts_with_the_wrong_type_or_case(
    server: Server, logs: Path, changes: dict[str, Any], words: str
) -> None:
    failed_at(run(server, logs, changed(RELEASE, **changes)), RELEASE, words)


@pytest.mark.parametrize(
    ("reviewer", "words"),
    [
        ("nobody-here", "reviewer 'nobody-here' is not in the register"),
        ("head-st-marys", "does not hold the release_reviewer role"),
        ("ig-whittington", "works for 'whittington-health'"),
    ],
)
def test_a_release_by_the_wrong_reviewer(
    server: Server, logs: Path, reviewer: str, words: str
) -> None:
    result = run(server, logs, changed(RELEASE, reviewer=reviewer))
    failed_at(result, RELEASE, words)
    failed_at(result, RELEASE, "names a reviewer other than the one who released")


def test_a_release_with_no_request(server: Server, logs: Path) -> None:
    orphan = {**BUILT.entries[RELEASE], "request": "r" + "9" * 20}
    entries = [*BUILT.entries, orphan]
    result = run(server, logs, entries)
    failed_at(result, len(entries) - 1, "which is not in the log before it")
    assert "6 releases" in statement(result)


def test_a_release_with_no_review_before_it(server: Server, logs: Path) -> None:
    review = RELEASE - 1
    assert BUILT.entries[review]["kind"] == "review"
    entries = BUILT.entries[:review] + BUILT.entries[review + 1 :]
    failed_at(run(server, logs, entries), review, "is not preceded by a review that released")


def test_a_policy_whose_pledge_hash_differs(server: Server, logs: Path) -> None:
    result = run(server, logs, changed(0, pledge="sha256:" + "0" * 64))
    failed_at(result, 0, "field 'pledge' is not the hash of the packaged pledge")


def test_a_policy_that_adds_a_pledge_rule(server: Server, logs: Path) -> None:
    text = BUILT.entries[0]["text"] + EXTRA_RULE.replace(
        "local/pupil-transfer-attendance", "pledge/pupil-transfer-attendance"
    )
    result = run(server, logs, changed(0, text=text))
    failed_at(result, 0, "its policy text does not load")
    failed_at(result, 0, "pledge/pupil-transfer-attendance")
    # Nothing can be decided under a policy that does not check out.
    assert any("cannot be decided again" in ln for ln in findings(result))


def test_a_policy_update_that_drops_a_pledge_rule(server: Server, logs: Path) -> None:
    update = first("policy", lambda e: e["change"] == "update")
    rules = [r for r in BUILT.entries[update]["rules"] if r != "pledge/never-nationality"]
    failed_at(run(server, logs, changed(update, rules=rules)), update, "field 'rules'")


def test_an_immigration_body_registered_as_police(server: Server, logs: Path) -> None:
    home_office = first("organisation", lambda e: e["id"] == "home-office-ie")
    result = run(server, logs, changed(home_office, function="police"))
    failed_at(result, home_office, "has a name that names immigration enforcement")
    disguised = changed(home_office, name="H0me 0ffice Imm1gration Enforcement", function="police")
    failed_at(run(server, logs, disguised), home_office, "names immigration enforcement")


def test_a_function_changed_by_adding_an_id_again(server: Server, logs: Path) -> None:
    police = first("organisation", lambda e: e["id"] == "met-police")
    again = {**BUILT.entries[police], "function": "local_authority"}
    entries = [*BUILT.entries, again]
    failed_at(run(server, logs, entries), len(entries) - 1, "adds organisation 'met-police' again")


def test_a_decision_that_differs_from_the_replay(server: Server, logs: Path) -> None:
    forged = changed(
        IMMIGRATION_DECISION,
        outcome="review",
        categories={
            c: {"outcome": "review", "rules": ["local/court-order"]}
            for c in BUILT.entries[IMMIGRATION_DECISION]["categories"]
        },
        rules=["local/court-order"],
    )
    result = run(server, logs, forged)
    failed_at(result, IMMIGRATION_DECISION, "differs from the request at entry")
    failed_at(result, IMMIGRATION_DECISION, "deciding again gives 'refused'")


def test_an_unknown_kind_is_refused_not_skipped(server: Server, logs: Path) -> None:
    entries = [*BUILT.entries, {"v": 1, "kind": "witness", "time": "2026-12-01T00:00:00Z"}]
    failed_at(run(server, logs, entries), len(entries) - 1, "a kind this reader does not know")


def test_an_old_shape_release_is_refused(server: Server, logs: Path) -> None:
    old = without(RELEASE, "is_child", "is_victim_or_witness", "consent")
    del old[RELEASE]["victims_or_witnesses"]
    failed_at(run(server, logs, old), RELEASE, "lacks the field")


# ----- every forgery of the catalogue ----------------------------------------------------


@pytest.fixture(scope="module")
def forgeries() -> list[Forgery]:
    return catalogue(BUILT)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_forgery_fails_and_names_its_entry(
    server: Server, logs: Path, forgeries: list[Forgery], data: st.DataObject
) -> None:
    forgery = data.draw(st.sampled_from(forgeries), label="forgery")
    forged = forgery.apply(BUILT)
    assert forged is not None
    result = run(server, logs, forged)
    assert result.exit_code == 1, result.output
    blamed = forgery.blamed(BUILT, forged)
    assert any(names_entry(result, k) for k in blamed), (blamed, findings(result))
    assert re.search(r"FAILED with [0-9,]+ finding", statement(result))
