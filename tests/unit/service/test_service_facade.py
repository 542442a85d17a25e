"""The disclosure lifecycle through the Python facade, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from carewall.errors import AuthError, ConflictError, InputError, NotFoundError, PolicyError
from carewall.ledger.checkpoint import open_checkpoint
from carewall.ledger.merkle import hash_leaf, verify_inclusion
from carewall.ledger.note import Verifier
from carewall.service import Service

Doc = Callable[..., dict[str, Any]]


def entries(svc: Service, start: int = 0) -> list[dict[str, Any]]:
    return [json.loads(e) for e in svc.ledger.entries(start, svc.ledger.size())]


def code_from_outbox(svc: Service, notice_id: int) -> str:
    (msg,) = svc.outbox(notice_id)
    m = re.search(r"access code:\s+(\S+)", msg["body"])
    assert m is not None
    return m.group(1)


def test_release_path_logs_every_step_and_notifies(svc: Service, make_doc: Doc) -> None:
    registered = svc.ledger.size()  # the pledge policy, then the register's entries
    assert [e["kind"] for e in entries(svc)][:2] == ["policy", "organisation"]
    got = svc.submit(make_doc())
    assert got.outcome == "review"
    assert [r.id for r in svc.queue("whittington-health")] == [got.id]
    rec = svc.review(got.id, "ig-whittington", release=True, note="proportionate")
    assert (rec.stage, rec.outcome) == ("reviewed", "released")
    assert rec.release is not None
    # nationality is never released, whatever the reviewer wants
    assert rec.release.categories == ["address", "name"]
    assert rec.release.recipient == "met-police"
    kinds = [e["kind"] for e in entries(svc, registered)]
    assert kinds == ["request", "decision", "review", "release", "notice"]
    review = entries(svc, registered)[2]
    assert review["corrected"] == 0 and review["groups"][0]["subjects"] == 1
    assert svc.queue("whittington-health") == []
    # the DPO record keeps what the law asks for
    assert rec.officer is not None and rec.officer["name"] == "DC Jo Smithson"
    assert rec.authorised_by is not None and rec.necessity and rec.reviewer == "ig-whittington"
    assert rec.review_note == "proportionate"
    assert [e.kind for e in rec.events] == ["received", "decided", "reviewed", "released"]
    # every event's log index holds an entry of the matching kind for this request
    log = entries(svc)
    for ev in rec.events:
        assert ev.log_index is not None and log[ev.log_index]["request"] == rec.id
    # the notice went to the outbox with an inclusion proof the subject can check
    (notice,) = rec.notices
    assert notice.status == "sent" and notice.delivered_at and notice.channel == "outbox"
    assert log[notice.log_index]["kind"] == "notice"
    assert log[notice.log_index]["subject"] == rec.subjects[0].commitment
    code = code_from_outbox(svc, notice.id)
    view = svc.subject_view(rec.id, code)
    assert view.categories == ["address", "name"] and view.recipient == "met-police"
    assert view.release_index == rec.release.groups[0].log_index
    assert view.tree_size is not None and view.checkpoint is not None
    # The proof is against a checkpoint signed by the log's key, checked as an outsider would.
    signed = open_checkpoint(view.checkpoint, [Verifier.from_vkey(svc.ledger.verifier_key)])
    assert signed.size == view.tree_size > view.release_index
    leaf = hash_leaf(svc.ledger.entries(view.release_index, view.release_index + 1)[0])
    verify_inclusion(
        view.release_index,
        view.tree_size,
        leaf,
        [bytes.fromhex(h) for h in view.inclusion_proof],
        signed.root,
    )
    # The notice the subject received carries the same signed checkpoint.
    body = json.dumps(svc.outbox(notice.id))
    assert signed.to_text().splitlines()[2] in body
    with pytest.raises(AuthError):
        svc.subject_view(rec.id, code + "x")


def test_pledge_refusal_cannot_be_reviewed_or_overturned(svc: Service, make_doc: Doc) -> None:
    got = svc.submit(make_doc(requester="home-office-ie", purpose="immigration_enforcement"))
    assert got.outcome == "refused"
    with pytest.raises(ConflictError):
        svc.review(got.id, "ig-whittington", release=True)
    svc.appeal(got.id, "requester", "we need the address")
    with pytest.raises(ConflictError):
        svc.decide_appeal(got.id, "caldicott-whittington", uphold=False)
    rec = svc.decide_appeal(got.id, "caldicott-whittington", uphold=True)
    assert (rec.stage, rec.outcome) == ("upheld", "refused")
    assert rec.release is None and rec.notices == []
    assert "release" not in [e["kind"] for e in entries(svc)]


def test_reviewer_must_hold_role_at_the_holder(svc: Service, make_doc: Doc) -> None:
    got = svc.submit(make_doc())
    svc.add_reviewer("appeals-only-wh", "Ann Other", "whittington-health", ["appeal_reviewer"])
    svc.add_reviewer("gone-wh", "Cy Retired", "whittington-health", ["release_reviewer"])
    svc.retire_reviewer("gone-wh")
    size = svc.ledger.size()
    for reviewer in ("nobody", "dpo-st-marys", "appeals-only-wh", "gone-wh"):
        with pytest.raises(AuthError) as e:
            svc.review(got.id, reviewer, release=True)
        assert e.value.field == "reviewer"
    assert svc.get(got.id).stage == "decided"
    assert svc.ledger.size() == size  # a refused review logs nothing


def test_refusal_appealed_and_overturned_by_a_different_person(svc: Service, make_doc: Doc) -> None:
    got = svc.submit(make_doc())
    svc.review(got.id, "caldicott-whittington", release=False)
    svc.appeal(got.id, "requester", "urgent")
    with pytest.raises(AuthError):
        svc.decide_appeal(got.id, "caldicott-whittington", uphold=False)  # same person
    with pytest.raises(AuthError):
        svc.decide_appeal(got.id, "ig-whittington", uphold=False)  # no appeal role
    added = svc.add_reviewer("appeals-wh", "Bo Second", "whittington-health", ["appeal_reviewer"])
    assert [(x.kind, x.change) for x in added.logged] == [("reviewer", "add")]
    rec = svc.decide_appeal(got.id, "appeals-wh", uphold=False)
    assert (rec.stage, rec.outcome) == ("overturned", "released")
    assert rec.release is not None and rec.release.reviewer == "appeals-wh"
    kinds = [e["kind"] for e in entries(svc, added.logged[0].log_index + 1)]
    assert kinds == ["appeal", "review", "release", "notice"]  # review: the holder's record
    assert rec.appeal is not None and rec.appeal.result == "overturned"


def test_subject_appeals_a_release_with_their_code(svc: Service, make_doc: Doc) -> None:
    got = svc.submit(make_doc())
    rec = svc.review(got.id, "ig-whittington", release=True)
    code = code_from_outbox(svc, rec.notices[0].id)
    with pytest.raises(AuthError):
        svc.subject_appeal(got.id, "wrong-code", "no")
    rec = svc.subject_appeal(got.id, code, "I was not involved")
    assert rec.stage == "appealed" and rec.appeal is not None and rec.appeal.by == "subject"
    rec = svc.decide_appeal(got.id, "caldicott-whittington", uphold=False)
    assert (rec.stage, rec.outcome) == ("overturned", "refused")
    with pytest.raises(ConflictError):
        svc.appeal(got.id, "subject", "again")


def test_prejudice_defers_the_notice_and_logs_the_deferral(svc: Service, make_doc: Doc) -> None:
    got = svc.submit(make_doc(prejudice=True))
    rec = svc.review(got.id, "ig-whittington", release=True)
    (notice,) = rec.notices
    assert notice.status == "deferred" and notice.review_date and notice.delivered_at is None
    assert svc.outbox() == []
    # the holder's decision to defer is a deferral entry; no notice is logged until sent
    last = entries(svc)[-1]
    assert last["kind"] == "deferral" and last["action"] == "deferred"
    assert last["review_date"] == notice.review_date and last["subjects"] == 1
    assert last["reviewer"] == "ig-whittington" and last["request"] == got.id
    assert [n.id for n in svc.notices(due_by="2999-01-01")] == [notice.id]
    assert [d.request_id for d in svc.deferrals(due_by="2999-01-01")] == [got.id]
    size = svc.ledger.size()
    rec = svc.lift_deferral(got.id, "ig-whittington")
    assert rec.notices[0].status == "sent" and rec.notices[0].delivered_at
    lifted, sent = entries(svc, size)
    assert (lifted["kind"], lifted["action"], lifted["review_date"]) == ("deferral", "lifted", None)
    assert (sent["kind"], sent["status"]) == ("notice", "sent")
    assert sent["subject"] == rec.subjects[0].commitment
    assert len(svc.outbox()) == 1
    assert svc.deferrals() == []


def test_withdraw_only_by_requester_and_only_before_review(svc: Service, make_doc: Doc) -> None:
    got = svc.submit(make_doc())
    size = svc.ledger.size()
    with pytest.raises(AuthError):
        svc.withdraw(got.id, "whittington-health")
    assert svc.ledger.size() == size  # a refused withdrawal logs nothing
    rec = svc.withdraw(got.id, "met-police")
    assert rec.stage == "withdrawn" and rec.withdrawn_by == "met-police"
    assert rec.outcome == "withdrawn"
    (entry,) = entries(svc, size)  # contract §6: one withdrawal entry naming the requester
    assert (entry["kind"], entry["request"], entry["by"]) == ("withdrawal", got.id, "met-police")
    with pytest.raises(ConflictError):
        svc.review(got.id, "ig-whittington", release=True)
    done = svc.submit(make_doc())
    svc.review(done.id, "ig-whittington", release=False)
    with pytest.raises(ConflictError):
        svc.withdraw(done.id, "met-police")


def test_each_subject_gets_only_what_their_group_permits(svc: Service, make_doc: Doc) -> None:
    subjects = [
        {"ref": "9000000001", "is_child": False, "is_victim_or_witness": False},
        {"ref": "9000000002", "is_child": False, "is_victim_or_witness": True},
    ]
    got = svc.submit(make_doc(subjects=subjects, categories=["name", "address"]))
    rec = svc.review(got.id, "ig-whittington", release=True)
    assert rec.release is not None
    assert [(g.subjects, g.categories) for g in rec.release.groups] == [([0], ["address", "name"])]
    release = [e for e in entries(svc) if e["kind"] == "release"]
    assert [(r["subjects"], r["victims_or_witnesses"]) for r in release] == [(1, 0)]
    assert [n.subject for n in rec.notices] == [0]


def test_bad_input_names_the_field(svc: Service, make_doc: Doc) -> None:
    size = svc.ledger.size()
    with pytest.raises(InputError) as e:
        svc.submit(make_doc(purpose="curiosity"))
    assert e.value.field == "purpose"
    with pytest.raises(InputError):
        svc.submit(b"{not json")
    with pytest.raises(NotFoundError):
        svc.get("r-missing")
    assert svc.ledger.size() == size


def test_local_policy_changes_are_logged_and_obeyed(svc: Service, make_doc: Doc) -> None:
    got = svc.submit(make_doc())
    with pytest.raises(PolicyError):
        svc.set_local_policy("this is not cedar")
    # a local policy with no permits: the pending request may no longer be released
    svc.set_local_policy("// nothing is permitted\n")
    policy = entries(svc)[-1]
    assert policy["kind"] == "policy" and policy["change"] == "update"
    with pytest.raises(ConflictError):
        svc.review(got.id, "ig-whittington", release=True)
    assert svc.submit(make_doc()).outcome == "refused"


def test_register_admin(svc: Service, make_doc: Doc) -> None:
    org = svc.add_organisation("leeds-council", "Leeds City Council", "local_authority")
    assert org.record.function == "local_authority"
    (logged,) = org.logged
    (entry,) = entries(svc, logged.log_index)
    assert (entry["kind"], entry["id"], entry["change"]) == ("organisation", "leeds-council", "add")
    size = svc.ledger.size()
    with pytest.raises(InputError):
        svc.add_organisation("bad-fn", "X", "spying")
    with pytest.raises(InputError):
        svc.add_reviewer("r1", "R", "no-such-org", ["release_reviewer"])
    with pytest.raises(ConflictError):
        svc.add_organisation("leeds-council", "again", "local_authority")
    assert svc.ledger.size() == size  # a refused change logs nothing
    assert svc.submit(make_doc(requester="leeds-council")).outcome in ("refused", "review")
    # a second handle on the same database sees the change (the register is re-read)
    other = Service.open(svc.store.url)
    assert "leeds-council" in other.register().organisations


def test_checkpoints_are_signed_at_most_once_per_interval_and_the_tail_on_demand(
    svc: Service, make_doc: Doc
) -> None:
    svc.submit(make_doc())  # the first write of a process always signs
    first = svc.ledger.checkpoints()[-1][0]
    assert first == svc.ledger.size()
    svc.publish_interval = 3600.0
    for _ in range(3):
        svc.submit(make_doc())
    # Under load the writers leave signing to the publisher, which then covers the tail.
    assert svc.ledger.checkpoints()[-1][0] == first < svc.ledger.size()
    svc.publish_pending()
    assert svc.ledger.checkpoints()[-1][0] == svc.ledger.size()


def test_a_second_handle_sees_policy_and_register_changes_at_once(
    svc: Service, make_doc: Doc, db_url: str, tmp_path: Path
) -> None:
    # Two handles on one database stand for two server processes, each with warm caches.
    other = Service.open(db_url, tmp_path / "log.key")
    try:
        assert svc.submit(make_doc()).outcome == "review"
        assert other.submit(make_doc()).outcome == "review"
        svc.set_local_policy(
            '@id("local/nothing-for-police")\n'
            'forbid (principal, action == Action::"disclose", resource)\n'
            'when { principal.function == Function::"police" };\n'
        )
        assert other.submit(make_doc()).outcome == "refused"
        svc.add_organisation("kent-police", "Kent Police", "police")
        with pytest.raises(InputError):
            svc.submit(make_doc(requester="no-such-force"))
        assert other.submit(make_doc(requester="kent-police")).outcome == "refused"
    finally:
        other.close()
