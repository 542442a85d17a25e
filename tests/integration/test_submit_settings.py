"""A submit decides under the policy and register in force when it commits.

A server process keeps the register and engine it last saw and decides before taking the
writers' lock; another process (the CLI, a second server) may change either in between.
These tests make that change from a second ``Service`` on the same database, then submit
through the first, and hold that the request is decided under what is stored at its
commit, and that the log replays clean for the outside auditor.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from logaudit import assert_log_audits

from carewall.errors import InputError
from carewall.service import Service

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DOC = json.loads((EXAMPLES / "07-police-theft-suspect.json").read_text(encoding="utf-8"))
STOP = (
    '@id("local/stop-everything")\n@legal_basis("consent")\n'
    'forbid (principal, action == Action::"disclose", resource) when { true };\n'
)


@pytest.fixture
def pair(db_url: str, tmp_path: Path) -> tuple[Service, Service]:
    first = Service.init(db_url, None, "test.example/log", tmp_path / "log.key")
    second = Service.open(db_url, tmp_path / "log.key")
    yield first, second
    second.close()
    first.close()


def _decision(svc: Service, log_index: int) -> dict[str, object]:
    (raw,) = svc.ledger.entries(log_index, log_index + 1)
    entry = json.loads(raw)
    assert entry["kind"] == "decision"
    return entry


def test_a_policy_set_by_another_process_decides_the_next_request(
    pair: tuple[Service, Service],
) -> None:
    first, second = pair
    before = first.submit(json.dumps(DOC))
    assert before.outcome == "review"  # the first process has now cached the policy
    digest = second.set_local_policy(STOP)
    after = first.submit(json.dumps(DOC))
    assert after.outcome == "refused"
    assert _decision(first, after.log_index)["policy"] == digest
    assert_log_audits(first)


def test_a_requester_retired_by_another_process_cannot_submit(
    pair: tuple[Service, Service],
) -> None:
    first, second = pair
    assert first.submit(json.dumps(DOC)).outcome == "review"
    second.retire_organisation(DOC["requester"])
    size = first.ledger.size()
    with pytest.raises(InputError) as e:
        first.submit(json.dumps(DOC))
    assert "requester" in e.value.human()
    assert first.ledger.size() == size  # nothing of the refused submit was recorded
    assert_log_audits(first)


def test_a_policy_set_back_by_another_process_is_followed_both_ways(
    pair: tuple[Service, Service],
) -> None:
    first, second = pair
    assert first.submit(json.dumps(DOC)).outcome == "review"
    second.set_local_policy(STOP)
    assert first.submit(json.dumps(DOC)).outcome == "refused"
    second.set_local_policy("")
    assert first.submit(json.dumps(DOC)).outcome == "review"
    assert_log_audits(first)


def test_a_requester_registered_by_another_process_can_submit_at_once(
    pair: tuple[Service, Service],
) -> None:
    first, second = pair
    assert first.submit(json.dumps(DOC)).outcome == "review"  # the register is now cached
    second.add_organisation("kent-police", "Kent Police", "police")
    got = first.submit(json.dumps(DOC | {"requester": "kent-police"}))
    assert got.outcome == "review"
    with pytest.raises(InputError) as e:  # an organisation nobody registered is still refused
        first.submit(json.dumps(DOC | {"requester": "kent-po1ice"}))
    assert "requester" in e.value.human()
    assert_log_audits(first)
