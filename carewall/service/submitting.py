"""Submitting a request: parse, decide, and record it with its decision in one transaction.

The register and policy a request is decided under are the ones this process last saw
(:meth:`~carewall.service.register_policy.RegisterPolicyMixin._current`, no database read
once warm). The decision is made before the write transaction, so the writers' lock is not
held while Cedar runs; inside the transaction, under the ledger's lock, the stored settings
are read again (:meth:`~carewall.service.register_policy.RegisterPolicyMixin._confirm`) and
the request is parsed and decided again if either changed. So a decision entry always
follows, in the log, the policy and register entries it was decided under, whichever
process changed them: the order the auditor replays in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

from carewall.errors import InputError
from carewall.ledger.subjects import subjects_root
from carewall.policy import Engine, Register
from carewall.policy.document import parse_document, stored_document
from carewall.policy.facts import SubjectFacts, facts_of_document
from carewall.service import idempotency as idem
from carewall.service import logentries as le
from carewall.service.lifecycle import Action, Outcome, Stage, next_stage
from carewall.service.records import Submitted
from carewall.service.registry import holder_key
from carewall.service.statements import (
    SMALL_REQUEST,
    _event_row,
    _insert_request,
    _received_at,
    _split_contacts,
    insert_batch,
)
from carewall.storage.db import pipelined
from carewall.text import check_text

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from carewall.service.facade import Service

__all__ = ["Parsed", "Ready", "Stale", "parse", "prepare", "submit", "write_batch"]


# The records a submit passes along are NamedTuples: as immutable as frozen dataclasses,
# and built in a third of the time (four of them per submit).


class _Decided(NamedTuple):
    """A request parsed and decided under one register and engine."""

    register: Register
    engine: Engine
    stored: dict[str, Any]
    claimed: list[SubjectFacts]
    decision: dict[str, Any]
    outcome: Literal["refused", "review"]


def _decide(svc: Service, data: Any, register: Register, engine: Engine) -> _Decided:
    # The plain reader: accepts and refuses exactly what the request models do (a
    # differential test holds them equal), at a third of their cost per subject.
    doc = parse_document(data, register, today=svc.clock().date())
    facts, claimed = facts_of_document(doc)
    try:
        decision = engine.decide_facts(facts, claimed, register).to_json()
    except Exception as e:  # fail closed: no decision is a refusal, but never silent
        raise InputError("the policy could not decide this request") from e
    outcome: Literal["refused", "review"] = (
        "review" if decision.get("outcome") == "review" else "refused"
    )
    decision["outcome"] = outcome
    stored = stored_document(doc)
    return _Decided(register, engine, stored, claimed, decision, outcome)


_DECIDED: Final = Stage.DECIDED.value
# The last register's organisation functions (id -> function), for the request entry: a
# Register is immutable once built and compared by identity (as the decision cache's
# fingerprint is), so its functions are read once, not once per submit. Only read.
_last_functions: tuple[Register, dict[str, str]] | None = None


def _functions(register: Register) -> dict[str, str]:
    global _last_functions
    last = _last_functions
    if last is not None and last[0] is register:
        return last[1]
    functions = {o.id: o.function for o in register.organisations.values()}
    _last_functions = (register, functions)
    return functions


class _Rows(NamedTuple):
    """What a decided request writes: its row, its subjects' rows, its two log entries."""

    request: dict[str, Any]
    subjects: list[dict[str, Any]]
    entries: list[bytes]


def _rows(
    svc: Service,
    d: _Decided,
    request_id: str,
    contacts: Mapping[int, str],
    key: bytes,
    now: str,
) -> _Rows:
    stored, claimed = d.stored, d.claimed
    refs = [s["ref"] for s in stored["subjects"]]
    commitments = le.commitments_for(key, request_id, refs)
    root = subjects_root(commitments)
    request_row = {
        "id": request_id,
        "holder": stored["holder"],
        "requester": stored["requester"],
        "purpose": stored["purpose"],
        "legal_basis": stored["legal_basis"],
        "stage": _DECIDED,
        "outcome": d.outcome,
        "document": json.dumps(stored),
        "decision": json.dumps(d.decision),
        "received_at": _received_at(stored.get("received_at"), now),
        "decided_at": now,
        "subjects_root": root,
    }
    subject_rows = [
        {
            "request_id": request_id,
            "position": i,
            "ref": ref,
            "is_child": claimed[i].is_child,
            "is_victim_or_witness": claimed[i].is_victim_or_witness,
            "consent": claimed[i].consent,
            "contact": contacts.get(i),
            "commitment": commitments[i],
        }
        for i, ref in enumerate(refs)
    ]
    functions = _functions(d.register)
    entries = [
        le.request_entry(stored, request_id, functions, claimed, root, now),
        le.decision_entry(request_id, d.decision, now),
    ]
    return _Rows(request_row, subject_rows, svc.ledger.encode(entries))


class Ready(NamedTuple):
    """A submit decided and built, waiting only for its transaction."""

    decided: _Decided
    rows: _Rows
    request_id: str
    now: str
    token: str | None = None  # the API token it is made with, confirmed live at commit


def write_batch(svc: Service, items: Sequence[Ready]) -> list[Submitted]:
    """Record ``items`` in one transaction (see :mod:`carewall.service.group_commit`).

    Raises, recording none of them, if any was decided under a register or policy that is
    no longer the stored one (each is then written alone, and decided again), if any was
    made with an API token that is no longer live (each is then written alone, and that
    one refused), or if the database refuses any of them.
    """
    tokens = {it.token for it in items if it.token is not None}
    with svc._write() as conn:
        first = items[0].decided
        head, fresh = svc._confirm(conn, first.register, first.engine, tokens)
        if fresh is not None or any(
            it.decided.register is not first.register or it.decided.engine is not first.engine
            for it in items
        ):
            raise Stale
        requests = [it.rows.request for it in items]
        subjects = [row for it in items for row in it.rows.subjects]
        with pipelined(conn):
            idx = svc.ledger.append_encoded_in(
                conn, [e for it in items for e in it.rows.entries], head
            )
            events = [
                row
                for k, it in enumerate(items)
                for row in _events(it.request_id, it.now, it.decided, idx[2 * k : 2 * k + 2])
            ]
            insert_batch(conn, requests, subjects, events)
    return [
        Submitted(id=it.request_id, outcome=it.decided.outcome, log_index=idx[2 * k + 1])
        for k, it in enumerate(items)
    ]


def _events(
    request_id: str, now: str, d: _Decided, log_indices: Sequence[int]
) -> list[dict[str, Any]]:
    """A submitted request's two events: received, then decided (with their log entries)."""
    received, decided = log_indices
    requester, detail = d.stored["requester"], _OUTCOME_DETAIL[d.outcome]
    return [
        _event_row(request_id, "received", now, requester, received),
        _event_row(request_id, "decided", now, None, decided, detail),
    ]


# The decided event's detail, {"outcome": …} as JSON, encoded once per outcome.
_OUTCOME_DETAIL: Final = {o: json.dumps({"outcome": o}) for o in ("refused", "review")}


class Stale(Exception):
    """A batch's register or policy is no longer the stored one."""


class Parsed(NamedTuple):
    """A document read and decided: its data without the contacts, the contacts, and the
    decision with the register and engine it was made under."""

    data: Any
    contacts: dict[int, str]
    decided: _Decided


def parse(svc: Service, doc: bytes | str | Mapping[str, Any]) -> Parsed:
    """``doc`` parsed and decided (InputError, naming the field, if it is not a request)."""
    data, contacts = _split_contacts(doc)
    for i, contact in contacts.items():
        check_text(contact, field=f"subjects[{i}].contact", kind="prose", max_length=2000)
    register, engine = svc._current()
    try:
        return Parsed(data, contacts, _decide(svc, data, register, engine))
    except InputError:
        # Refused under what this process last saw: perhaps another process has since
        # registered the organisation it names. Refuse only under the stored register.
        stored_pair = svc._current(reread=True)
        if stored_pair[0] is register and stored_pair[1] is engine:
            raise
        return Parsed(data, contacts, _decide(svc, data, *stored_pair))


def prepare(svc: Service, parsed: Parsed, token: str | None = None) -> Ready | None:
    """A parsed request built to share a transaction with others (:func:`write_batch`),
    with its id and the time now; None, before any id is taken, when it cannot share one
    (its holder's first request, whose key the transaction creates, or more than
    ``SMALL_REQUEST`` subjects): :func:`submit` it alone, with ``parsed``. ``token``: as
    for :func:`submit`.
    """
    d = parsed.decided
    key = svc._holder_keys.get(d.stored["holder"])
    if key is None or len(d.claimed) > SMALL_REQUEST:
        return None
    request_id = svc.new_id()
    now = le.rfc3339(svc.clock())
    rows = _rows(svc, d, request_id, parsed.contacts, key, now)
    return Ready(d, rows, request_id, now, token)


def submit(
    svc: Service,
    doc: bytes | str | Mapping[str, Any],
    idempotency_key: str | None,
    parsed: Parsed | None = None,
    token: str | None = None,
    also: Callable[[Connection, str, str], None] | None = None,
) -> Submitted:
    """Record a request and the policy's decision (request + decision entries).

    ``parsed``: ``doc`` as :func:`parse` already read and decided it (not read again).
    ``also(conn, request_id, now)``: more rows to write in the request's own transaction,
    after its row (an extract's, :mod:`carewall.service.extracts`); the request is then
    recorded alone, never in a shared batch.
    ``token``: the id of the API token the request is made with; unless it is still live
    in the recording transaction, nothing is recorded and AuthError is raised (before an
    idempotent retry's first result is read, too: :mod:`carewall.service.token_check`).

    Everything that needs no lock (parsing, deciding, the subjects' commitments, the rows
    and the encoded entries) is done before the write transaction: on PostgreSQL the
    ledger's lock serialises every writer, so work done under it is work nobody else can
    do meanwhile.
    """
    key_used = None if idempotency_key is None else idem.check_key(idempotency_key)
    parsed = parse(svc, doc) if parsed is None else parsed
    data, contacts, d = parsed.data, parsed.contacts, parsed.decided
    request_id = svc.new_id()
    now = le.rfc3339(svc.clock())
    key = svc._holder_keys.get(d.stored["holder"])
    rows = None if key is None else _rows(svc, d, request_id, contacts, key, now)
    shared = key_used is None and also is None
    if rows is not None and shared and len(rows.subjects) <= SMALL_REQUEST:
        # Shares a transaction with any submits waiting beside it; alone if that fails.
        done = svc.submit_batches.offer(Ready(d, rows, request_id, now, token))
        if done is not None:
            return done
    with svc._write() as conn:
        next_stage(Stage.RECEIVED, Outcome.REVIEW, Action.DECIDE)
        head, fresh = svc._confirm(conn, d.register, d.engine, () if token is None else (token,))
        if fresh is not None:  # the policy or register changed since: decide under the new
            d, rows = _decide(svc, data, *fresh), None
        stored, outcome = d.stored, d.outcome
        if key_used is not None:
            first = idem.claim(
                conn,
                stored["requester"],
                key_used,
                idem.digest_of(stored, contacts),
                Submitted(id=request_id, outcome=outcome, log_index=0),
                svc.clock(),
            )
            if first is not None:
                return first
        holder = stored["holder"]
        if rows is None:
            key = svc._holder_keys.get(holder) or holder_key(conn, holder)
            rows = _rows(svc, d, request_id, contacts, key, now)
        # Every write below is an INSERT whose result nothing reads: one round trip (a large
        # request's subjects go by COPY instead, which a pipeline cannot carry).
        small = len(rows.subjects) <= SMALL_REQUEST
        with pipelined(conn) if small else nullcontext():
            _insert_request(conn, rows.request, rows.subjects)
            idx = svc.ledger.append_encoded_in(conn, rows.entries, head)
            if key_used is not None:
                idem.settle(conn, stored["requester"], key_used, idx[1])
            insert_batch(conn, [], [], _events(request_id, now, d, idx))
        if also is not None:
            also(conn, request_id, now)
    if key is not None:  # holder keys are never changed or deleted: a committed one may be kept
        svc._holder_keys[holder] = key
    return Submitted(id=request_id, outcome=outcome, log_index=idx[1])
