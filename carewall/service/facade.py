"""The disclosure service: the one facade the CLI, the HTTP API and the pages call.

Every state change and its contract §6 ledger entries are written in ONE database
transaction (``store.write()`` + ``ledger.append_in``), so the request's state and the public
log can never disagree, even if the process dies mid-way. Checkpoints are published and
notices delivered only after that transaction commits. Every refusal is a CarewallError.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from carewall.errors import AuthError, ConflictError, InputError, NotFoundError
from carewall.ledger import Ledger
from carewall.ledger.keys import default_key_path
from carewall.policy import (
    DEFAULT_REGISTER_PATH,
    Engine,
    Register,
    load_register,
    parse_request,
)
from carewall.service import logentries as le
from carewall.service import tables as t
from carewall.service.lifecycle import Action, Outcome, Stage, next_stage
from carewall.service.notices import Channel, channel_from_env
from carewall.service.reading import ReadMixin
from carewall.service.records import RequestRecord, Submitted
from carewall.service.register_policy import RegisterPolicyMixin
from carewall.service.registry import holder_key, write_register
from carewall.service.release import plan_release
from carewall.service.statements import (
    _LOCK_REQUEST,
    _TWO_EVENTS,
    _UPDATE_APPEAL,
    _UPDATE_NOTICE,
    _UPDATE_REQUEST,
    _event_row,
    _insert_request,
    _received_at,
    _split_contacts,
)
from carewall.storage.db import Store, open_store
from carewall.storage.migrate import current_revision, head_revision, upgrade

__all__ = ["DEFAULT_DEFERRAL_DAYS", "Service"]

DEFAULT_DEFERRAL_DAYS = 90


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return "r" + secrets.token_hex(10)


class Service(RegisterPolicyMixin, ReadMixin):
    """A carewall instance: register, policy engine, request store and ledger."""

    def __init__(self, store: Store, ledger: Ledger, channel: Channel | None = None) -> None:
        self.store = store
        self.ledger = ledger
        self.channel: Channel = channel if channel is not None else channel_from_env(store)
        self.clock: Callable[[], datetime] = _now
        self.new_id: Callable[[], str] = _new_id
        # Publishing signs a checkpoint; bulk loaders (the demo) turn it off and publish once.
        self.auto_publish = True
        # Under load, sign at most one checkpoint per interval (the server's publisher signs
        # the tail); the first write of a process always signs, so one-shot CLI runs do too.
        self.publish_interval = 1.0
        self._published_at = float("-inf")
        self._engines: dict[str, Engine] = {}
        self._register: tuple[str, Register] | None = None
        self._holder_keys: dict[str, bytes] = {}
        # SQLite admits one writer; threads of this process queue here and are woken at
        # once, instead of polling in SQLite's busy handler (which sleeps up to 100 ms).
        # Other processes still wait in the busy handler. PostgreSQL needs no such queue.
        self._writer_turn: AbstractContextManager[Any] = (
            threading.RLock() if store.is_sqlite else nullcontext()
        )

    # ----- opening -------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        db_url: str | None = None,
        orgs_path: str | Path | None = None,
        origin: str | None = None,
        key_path: str | Path | None = None,
        *,
        channel: Channel | None = None,
    ) -> Service:
        """Create an instance: schema, register, the pledge as ledger entry 0, a log key."""
        register = load_register(orgs_path or DEFAULT_REGISTER_PATH)
        engine = Engine.load(None)
        store = open_store(db_url)
        key = Path(key_path) if key_path else default_key_path(db_url)
        upgrade(store)
        with store.read() as conn:
            if conn.execute(sa.select(t.settings.c.key).limit(1)).first() is not None:
                raise ConflictError(
                    "this database already holds a carewall instance",
                    field="--db",
                    fix="use `carewall serve` on it, or choose a new database",
                )
        ledger = Ledger.create(store, origin or "carewall.example/log", key)
        svc = cls(store, ledger, channel)
        with store.write() as conn:
            write_register(conn, register)
            conn.execute(
                t.settings.insert(),
                [
                    {"key": "local_policy", "value": ""},
                    {"key": "register_version", "value": "1"},
                    {"key": "deferral_days", "value": str(DEFAULT_DEFERRAL_DAYS)},
                ],
            )
            ledger.append_in(conn, [svc._policy_entry(engine, "init")])
        ledger.publish()
        return svc

    @classmethod
    def open(
        cls,
        db_url: str | None = None,
        key_path: str | Path | None = None,
        *,
        channel: Channel | None = None,
    ) -> Service:
        """Open an existing instance; upgrades its schema and checks the policy loads."""
        store = open_store(db_url)
        # Alembic is not thread-safe, so only run it when the schema is actually behind.
        if current_revision(store) != head_revision(store):
            upgrade(store)
        with store.read() as conn:
            if conn.execute(sa.select(t.settings.c.key).limit(1)).first() is None:
                raise NotFoundError(
                    "no carewall instance in this database",
                    field="--db",
                    fix="create one with `carewall init`",
                )
        key = Path(key_path) if key_path else default_key_path(db_url)
        ledger = Ledger.open(store, key if key.exists() else None)
        svc = cls(store, ledger, channel)
        svc.engine()  # refuse to open when the stored policy no longer loads (pledge altered)
        return svc

    def close(self) -> None:
        self.store.dispose()

    # ----- helpers -------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A writer transaction that also signs a checkpoint when one is due.

        Signing inside the transaction costs no extra durable commit, and the checkpoint
        commits atomically with the entries it covers.
        """
        signed = False
        with self._writer_turn, self.store.write() as conn:
            yield conn
            due = time.monotonic() - self._published_at >= self.publish_interval
            if self.auto_publish and self.ledger.writable and due:
                self.ledger.publish_in(conn)
                signed = True
        if signed:
            self._published_at = time.monotonic()

    def publish_if_due(self) -> None:
        """Sign the tail if no checkpoint was signed for an interval (the server's publisher)."""
        if self.ledger.writable and time.monotonic() - self._published_at >= self.publish_interval:
            self.publish_pending()

    def publish_pending(self) -> str:
        """Sign a checkpoint over any entries written since the last one; return the newest."""
        note = self.ledger.publish()
        self._published_at = time.monotonic()
        return note

    def _functions(self, register: Register) -> dict[str, str]:
        return {o.id: o.function for o in register.organisations.values()}

    def _lock_row(self, conn: Connection, request_id: str) -> Row[Any]:
        row = conn.execute(_LOCK_REQUEST, {"rid": request_id}).first()
        if row is None:
            raise NotFoundError("no such request", field="id", fix="check the request id")
        return row

    def _check_reviewer(self, register: Register, reviewer_id: str, holder: str, role: str) -> None:
        rev = register.reviewers.get(reviewer_id)
        if rev is None:
            raise AuthError(
                "the reviewer is not in the register",
                field="reviewer",
                fix="use the id of a registered reviewer",
            )
        if rev.organisation != holder:
            raise AuthError(
                "the reviewer does not work for the organisation holding the data",
                field="reviewer",
                fix="a reviewer at the holding organisation must do this",
            )
        if role not in rev.roles:
            raise AuthError(
                f"the reviewer does not hold the {role} role",
                field="reviewer",
                fix=f"ask someone with the {role} role",
            )

    def _event(
        self,
        conn: Connection,
        request_id: str,
        kind: str,
        time: str,
        actor: str | None,
        log_index: int | None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        conn.execute(
            t.events.insert(), _event_row(request_id, kind, time, actor, log_index, detail)
        )

    # ----- the lifecycle ---------------------------------------------------------------

    def submit(self, doc: bytes | str | Mapping[str, Any]) -> Submitted:
        """Record a request and the policy's decision (request + decision entries)."""
        data, contacts = _split_contacts(doc)
        register, engine = self._current()
        request = parse_request(data, register)
        try:
            decision = engine.decide(request, register).to_json()
        except Exception as e:  # fail closed: no decision is a refusal, but never silent
            raise InputError("the policy could not decide this request") from e
        stored = request.model_dump(mode="json")
        outcome: Literal["refused", "review"] = (
            "review" if decision.get("outcome") == "review" else "refused"
        )
        decision["outcome"] = outcome
        request_id = self.new_id()
        now = le.rfc3339(self.clock())
        received = _received_at(stored.get("received_at"), now)
        functions = self._functions(register)
        refs = [s["ref"] for s in stored["subjects"]]
        with self._write() as conn:
            next_stage(Stage.RECEIVED, Outcome.REVIEW, Action.DECIDE)
            holder = stored["holder"]
            key = self._holder_keys.get(holder)
            if key is None:
                key = holder_key(conn, holder)
            commitments = le.commitments_for(key, request_id, refs)
            request_row = {
                "id": request_id,
                "holder": holder,
                "requester": stored["requester"],
                "purpose": stored["purpose"],
                "legal_basis": stored["legal_basis"],
                "stage": Stage.DECIDED.value,
                "outcome": outcome,
                "document": json.dumps(stored),
                "decision": json.dumps(decision),
                "received_at": received,
                "decided_at": now,
            }
            subject_rows = [
                {
                    "request_id": request_id,
                    "position": i,
                    "ref": s["ref"],
                    "is_child": bool(s.get("is_child")),
                    "is_victim_or_witness": bool(s.get("is_victim_or_witness")),
                    "contact": contacts.get(i),
                    "commitment": commitments[i],
                }
                for i, s in enumerate(stored["subjects"])
            ]
            _insert_request(conn, request_row, subject_rows)
            entries = [
                le.request_entry(stored, request_id, functions, commitments, now),
                le.decision_entry(request_id, decision, now),
            ]
            idx = self.ledger.append_in(conn, entries)
            received_row = _event_row(request_id, "received", now, stored["requester"], idx[0])
            decided_row = _event_row(request_id, "decided", now, None, idx[1], {"outcome": outcome})
            conn.execute(
                _TWO_EVENTS,
                {f"e0_{k}": v for k, v in received_row.items()}
                | {f"e1_{k}": v for k, v in decided_row.items()},
            )
        # Holder keys are never changed or deleted, so a committed one may be kept.
        self._holder_keys[holder] = key
        return Submitted(id=request_id, outcome=outcome, log_index=idx[1])

    def review(
        self, id: str, reviewer_id: str, release: bool, note: str | None = None
    ) -> RequestRecord:
        """A named release reviewer at the holder releases what the policy permits, or refuses."""
        register = self.register()
        with self._write() as conn:
            row = self._lock_row(conn, id)
            self._check_reviewer(register, reviewer_id, row.holder, "release_reviewer")
            next_stage(row.stage, row.outcome, Action.REVIEW)
            now = le.rfc3339(self.clock())
            if release:
                self._release(conn, row, register, reviewer_id, now, [])
            else:
                idx = self.ledger.append_in(
                    conn, [le.review_entry(id, "refused", reviewer_id, [], now)]
                )
                self._event(conn, id, "reviewed", now, reviewer_id, idx[0], {"outcome": "refused"})
            values: dict[str, Any] = {
                "stage": Stage.REVIEWED.value,
                "reviewer": reviewer_id,
                "reviewed_at": now,
                "review_note": note,
            }
            if not release:
                values["outcome"] = Outcome.REFUSED.value
            conn.execute(_UPDATE_REQUEST, {"rid": id, **values})
        self._after_commit()
        return self.get(id)

    def _release(
        self,
        conn: Connection,
        row: Row[Any],
        register: Register,
        reviewer_id: str,
        now: str,
        leading: list[dict[str, Any]],
    ) -> None:
        """Release what both the stored and the current policy permit; log it all at once.

        ``leading`` entries (e.g. an appeal's) are appended first in the same transaction.
        """
        doc = json.loads(row.document)
        engine = self.engine(conn)
        request = parse_request(doc, register)
        fresh = engine.decide(request, register).to_json()
        groups = plan_release(json.loads(row.decision), fresh, len(doc["subjects"]))
        if not groups:
            raise ConflictError(
                "the policy permits nothing to be released for this request",
                fix="refuse it instead",
            )
        functions = self._functions(register)
        subjects = conn.execute(
            sa.select(t.subjects)
            .where(t.subjects.c.request_id == row.id)
            .order_by(t.subjects.c.position)
        ).all()
        released = sorted({c for _, cats in groups for c in cats})
        entries: list[dict[str, Any]] = list(leading)
        if not leading:
            entries.append(dict(le.review_entry(row.id, "released", reviewer_id, released, now)))
        first_release = len(entries)
        for positions, cats in groups:
            entries.append(
                dict(
                    le.release_entry(
                        doc,
                        row.id,
                        functions,
                        categories=cats,
                        subjects=positions,
                        reviewer=reviewer_id,
                        policy=str(fresh.get("policy", engine.policy_hash)),
                        time=now,
                    )
                )
            )
        deferred = bool(doc.get("prejudice"))
        review_date = None
        if deferred:
            days = int(self._setting(conn, "deferral_days") or DEFAULT_DEFERRAL_DAYS)
            review_date = (
                datetime.fromisoformat(now.replace("Z", "+00:00")).date() + timedelta(days=days)
            ).isoformat()
        notice_for: list[tuple[int, int]] = []  # (position, group number)
        for g, (positions, _) in enumerate(groups):
            for p in positions:
                notice_for.append((p, g))
                entries.append(
                    dict(
                        le.notice_entry(
                            row.id,
                            subjects[p].commitment,
                            "deferred" if deferred else "sent",
                            now,
                            review_date,
                        )
                    )
                )
        idx = self.ledger.append_in(conn, entries)
        for i, e in enumerate(leading):
            self._event(conn, row.id, "appeal_" + str(e.get("stage")), now, reviewer_id, idx[i])
        if not leading:
            self._event(conn, row.id, "reviewed", now, reviewer_id, idx[0], {"outcome": "released"})
        release_groups = []
        for g, (positions, cats) in enumerate(groups):
            li = idx[first_release + g]
            release_groups.append({"subjects": positions, "categories": cats, "log_index": li})
            self._event(conn, row.id, "released", now, reviewer_id, li)
        base = first_release + len(groups)
        for k, (p, g) in enumerate(notice_for):
            li = idx[base + k]
            conn.execute(
                t.notices.insert(),
                {
                    "request_id": row.id,
                    "position": p,
                    "status": "deferred" if deferred else "sent",
                    "review_date": review_date,
                    "release_index": release_groups[g]["log_index"],
                    "log_index": li,
                    "created_at": now,
                },
            )
            self._event(conn, row.id, "notice_deferred" if deferred else "notice", now, None, li)
        record = {
            "sent_at": now,
            "recipient": row.requester,
            "reviewer": reviewer_id,
            "policy": str(fresh.get("policy", engine.policy_hash)),
            "categories": released,
            "groups": release_groups,
        }
        conn.execute(
            _UPDATE_REQUEST,
            {
                "rid": row.id,
                "outcome": Outcome.RELEASED.value,
                "released_at": now,
                "release": json.dumps(record),
            },
        )

    def appeal(self, id: str, by: Literal["requester", "subject"], grounds: str) -> RequestRecord:
        """Lodge an appeal: the requester against a refusal, the subject against a release."""
        if by not in ("requester", "subject"):
            raise InputError("must be 'requester' or 'subject'", field="by")
        if not grounds or not grounds.strip():
            raise InputError("give the grounds of the appeal", field="grounds")
        action = Action.APPEAL_REQUESTER if by == "requester" else Action.APPEAL_SUBJECT
        with self._write() as conn:
            row = self._lock_row(conn, id)
            stage = next_stage(row.stage, row.outcome, action)
            now = le.rfc3339(self.clock())
            idx = self.ledger.append_in(conn, [le.appeal_entry(id, by, "lodged", now)])
            conn.execute(
                t.appeals.insert(),
                {
                    "request_id": id,
                    "by": by,
                    "grounds": grounds,
                    "prior_outcome": row.outcome,
                    "lodged_at": now,
                },
            )
            conn.execute(_UPDATE_REQUEST, {"rid": id, "stage": stage.value})
            self._event(conn, id, "appeal_lodged", now, by, idx[0])
        return self.get(id)

    def subject_appeal(self, request_id: str, code: str, grounds: str) -> RequestRecord:
        """The subject appeals a release, proving who they are with their access code."""
        self._subject_position(request_id, code)
        return self.appeal(request_id, "subject", grounds)

    def decide_appeal(self, id: str, reviewer_id: str, uphold: bool) -> RequestRecord:
        """A different person, holding ``appeal_reviewer`` at the holder, decides the appeal.

        Overturning a refusal releases what the policy permits (never more); overturning a
        release records that it should not have happened.
        """
        register = self.register()
        with self._write() as conn:
            row = self._lock_row(conn, id)
            self._check_reviewer(register, reviewer_id, row.holder, "appeal_reviewer")
            if row.reviewer is not None and row.reviewer == reviewer_id:
                raise AuthError(
                    "the appeal must be decided by someone other than the first reviewer",
                    field="reviewer",
                    fix="ask another appeal reviewer",
                )
            stage = next_stage(row.stage, row.outcome, Action.UPHOLD if uphold else Action.OVERTURN)
            appeal = conn.execute(sa.select(t.appeals).where(t.appeals.c.request_id == id)).one()
            now = le.rfc3339(self.clock())
            result: Literal["upheld", "overturned"] = "upheld" if uphold else "overturned"
            entry = dict(le.appeal_entry(id, appeal.by, result, now, reviewer_id))
            if not uphold and appeal.prior_outcome == Outcome.REFUSED.value:
                self._release(conn, row, register, reviewer_id, now, [entry])
            else:
                idx = self.ledger.append_in(conn, [entry])
                self._event(conn, id, "appeal_" + result, now, reviewer_id, idx[0])
                if not uphold:
                    conn.execute(_UPDATE_REQUEST, {"rid": id, "outcome": Outcome.REFUSED.value})
            conn.execute(
                _UPDATE_APPEAL,
                {"rid": id, "reviewer": reviewer_id, "decided_at": now, "result": result},
            )
            conn.execute(_UPDATE_REQUEST, {"rid": id, "stage": stage.value})
        self._after_commit()
        return self.get(id)

    def withdraw(self, id: str, by_org: str) -> RequestRecord:
        """The requester withdraws a request not yet reviewed.

        Contract §6 has no entry kind for a withdrawal, so none is logged: the public log
        shows the request and decision and no release, which is what happened.
        """
        with self._write() as conn:
            row = self._lock_row(conn, id)
            if by_org != row.requester:
                raise AuthError(
                    "only the requesting organisation can withdraw its request",
                    field="by_org",
                    fix="withdraw as the requester",
                )
            stage = next_stage(row.stage, row.outcome, Action.WITHDRAW)
            now = le.rfc3339(self.clock())
            conn.execute(
                _UPDATE_REQUEST,
                {"rid": id, "stage": stage.value, "withdrawn_by": by_org, "withdrawn_at": now},
            )
            self._event(conn, id, "withdrawn", now, by_org, None)
        return self.get(id)

    def lift_deferral(self, notice_id: int, reviewer_id: str) -> RequestRecord:
        """Send a deferred notice now that telling the subject no longer prejudices the purpose."""
        register = self.register()
        with self._write() as conn:
            n = conn.execute(
                sa.select(t.notices).where(t.notices.c.id == notice_id).with_for_update()
            ).first()
            if n is None:
                raise NotFoundError("no such notice", field="notice")
            row = self._lock_row(conn, n.request_id)
            self._check_reviewer(register, reviewer_id, row.holder, "release_reviewer")
            if n.status != "deferred":
                raise ConflictError("the notice is not deferred", field="notice")
            commitment = conn.execute(
                sa.select(t.subjects.c.commitment).where(
                    (t.subjects.c.request_id == n.request_id)
                    & (t.subjects.c.position == n.position)
                )
            ).scalar_one()
            now = le.rfc3339(self.clock())
            idx = self.ledger.append_in(
                conn, [le.notice_entry(n.request_id, commitment, "sent", now)]
            )
            conn.execute(
                _UPDATE_NOTICE,
                {"nid": notice_id, "status": "sent", "log_index": idx[0], "review_date": None},
            )
            self._event(conn, n.request_id, "notice", now, reviewer_id, idx[0])
        self._after_commit()
        return self.get(n.request_id)

    def _after_commit(self) -> None:
        if self.auto_publish:
            self.deliver_pending()
