"""The disclosure service: the one facade the CLI, the HTTP API and the pages call.

Every state change and its contract §6 ledger entries are written in ONE database
transaction (``store.write()`` + ``ledger.append_in``), so the request's state and the public
log can never disagree, even if the process dies mid-way. Checkpoints are published and
notices delivered only after that transaction commits. Every refusal is a CarewallError.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import Connection, Row

from carewall.errors import (
    AuthError,
    ForbiddenError,
    NotFoundError,
)
from carewall.ledger import Ledger
from carewall.policy import (
    Engine,
    Register,
)
from carewall.service import deciding, lodging, opening, submitting
from carewall.service import logentries as le
from carewall.service.deferrals import (
    Deferral,
    change_deferral,
    list_deferrals,
    released_count,
)
from carewall.service.documents import Documents
from carewall.service.extract_terms import Extract
from carewall.service.group_commit import GroupCommit
from carewall.service.jobs import JobPolicy, after_commit, queue_notices
from carewall.service.jobstore import QueuedJob
from carewall.service.notices import Channel, channel_from_env
from carewall.service.reading import ReadMixin
from carewall.service.records import RequestRecord, RequestSummary, Submitted
from carewall.service.register_policy import RegisterPolicyMixin
from carewall.service.registry import record_admin
from carewall.service.releasing import DEFAULT_DEFERRAL_DAYS
from carewall.service.statements import (
    _INSERT_EVENT,
    _LOCK_REQUEST,
    _event_row,
)
from carewall.service.submit_batch import SubmitBatch, submit_together
from carewall.storage.db import Store

__all__ = ["DEFAULT_DEFERRAL_DAYS", "Service"]


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
        # The address the public reaches this instance at (set by the server); notices name
        # its /my-data page. None: the letter names the page without the address.
        self.public_url: str | None = None
        # Under load, sign at most one checkpoint per interval (the server's publisher signs
        # the tail); the first write of a process always signs, so one-shot CLI runs do too.
        self.publish_interval = 1.0
        self._published_at = float("-inf")
        self._engines: dict[str, Engine] = {}
        self._register: tuple[str, Register] | None = None
        self._holder_keys: dict[str, bytes] = {}
        self.documents = Documents()
        # SQLite admits one writer; threads of this process queue here and are woken at
        # once, instead of polling in SQLite's busy handler (which sleeps up to 100 ms).
        # Other processes still wait in the busy handler. PostgreSQL needs no such queue.
        self._writer_turn: AbstractContextManager[Any] = (
            threading.RLock() if store.is_sqlite else nullcontext()
        )
        # How this instance runs jobs (a release's notices): see carewall.service.jobs.
        self.job_policy = JobPolicy()
        # Concurrent submits share transactions (one commit for all waiting).
        self.submit_batches: GroupCommit[submitting.Ready, Submitted] = GroupCommit(
            lambda items: submitting.write_batch(self, items)
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
        operator: str | None = None,
        durable: bool = True,
        clock: Callable[[], datetime] | None = None,
    ) -> Service:
        """Create an instance: schema, register, the pledge as ledger entry 0, a log key.

        ``operator`` is the organisation running the instance: its admin may change the
        instance-wide local policy over HTTP (otherwise only `carewall policy set` can).
        ``durable=False``: for a SQLite instance built in bulk and rebuilt if lost (the
        demo); see :func:`carewall.storage.db.open_store`. Close it and open it again to
        serve. ``clock``: the instance's clock from its first entry (the demo's own year,
        so that its log's times never go backwards).
        """
        return opening.create(
            cls, db_url, orgs_path, origin, key_path, channel, operator, durable, clock
        )

    @classmethod
    def open(
        cls,
        db_url: str | None = None,
        key_path: str | Path | None = None,
        *,
        channel: Channel | None = None,
    ) -> Service:
        """Open an existing instance; upgrades its schema and checks the policy loads."""
        return opening.open_existing(cls, db_url, key_path, channel)

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
        """An unknown reviewer is not authenticated (401); a known one who may not is 403."""
        rev = register.reviewers.get(reviewer_id)
        if rev is None and reviewer_id in register.retired_reviewers:
            raise ForbiddenError(
                "the reviewer has been retired from the register",
                field="reviewer",
                fix="ask a current reviewer at the holder",
            )
        if rev is None:
            raise AuthError(
                "the reviewer is not in the register",
                field="reviewer",
                fix="use the id of a registered reviewer",
            )
        if rev.organisation != holder:
            raise ForbiddenError(
                "the reviewer does not work for the organisation holding the data",
                field="reviewer",
                fix="a reviewer at the holding organisation must do this",
            )
        if role not in rev.roles:
            raise ForbiddenError(
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
        conn.execute(_INSERT_EVENT, _event_row(request_id, kind, time, actor, log_index, detail))

    # ----- the lifecycle ---------------------------------------------------------------

    def submit(
        self,
        doc: bytes | str | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        token: str | None = None,
    ) -> Submitted:
        """Record a request and the policy's decision (request + decision entries).

        With ``idempotency_key``, a retry of the same document by the same requester within
        a day returns the first result (a :class:`~carewall.service.records.Replayed`)
        and records nothing; the same key with another document is a ConflictError.
        ``token``: the id of the API token it is made with, which must still be live when
        the request is recorded (AuthError otherwise, and nothing recorded).
        """
        return submitting.submit(self, doc, idempotency_key, token=token)

    def submit_together(self) -> AbstractContextManager[SubmitBatch]:
        """Submit many requests, each decided at once, recorded together at the block's end
        (see :mod:`carewall.service.submit_batch`)::

            with svc.submit_together() as batch:
                pending = [batch.submit(doc) for doc in docs]
        """
        return submit_together(self)

    def review(
        self,
        id: str,
        reviewer_id: str,
        release: bool,
        note: str | None = None,
        *,
        facts: Sequence[Any] | None = None,
        defer_until: str | None = None,
        no_defer: bool = False,
    ) -> RequestRecord:
        """A named release reviewer at the holder releases what the policy permits, or refuses.

        ``facts`` holds the reviewer's confirmations and corrections of the subjects' facts
        (``{"subject": i, "is_child"|"is_victim_or_witness"|"consent": bool}``); the release
        is decided again on that record. ``defer_until`` (at most 90 days ahead) or
        ``no_defer`` is the reviewer's decision on a request to defer the notices.
        Returns the full record; :meth:`record_review` records the same without reading
        it back (a release of 100,000 people has a record of tens of megabytes).
        """
        deciding.review(self, id, reviewer_id, release, note, facts, defer_until, no_defer, None)
        return self.get(id)

    def record_review(
        self,
        id: str,
        reviewer_id: str,
        release: bool,
        note: str | None = None,
        *,
        facts: Sequence[Any] | None = None,
        defer_until: str | None = None,
        no_defer: bool = False,
        extract: Extract | None = None,
    ) -> RequestSummary:
        """:meth:`review`, returning only the request's summary (ids, stage, counts).

        ``extract``: the release of an extract's held file (see :mod:`.extracts`)."""
        deciding.review(self, id, reviewer_id, release, note, facts, defer_until, no_defer, extract)
        return self.summary(id)

    def appeal(
        self,
        id: str,
        by: Literal["requester", "subject"],
        grounds: str,
        *,
        subject: int | None = None,
    ) -> RequestRecord:
        """Lodge an appeal: the requester against a refusal, the subject against a release.

        ``subject`` is the appealing subject's position, so only they read their grounds.
        """
        lodging.lodge_appeal(self, id, by, grounds, subject)
        return self.get(id)

    def subject_appeal(self, request_id: str, code: str, grounds: str) -> RequestRecord:
        """The subject appeals a release, proving who they are with their access code."""
        position = self._subject_position(request_id, code)
        return self.appeal(request_id, "subject", grounds, subject=position)

    def decide_appeal(
        self,
        id: str,
        reviewer_id: str,
        uphold: bool,
        *,
        facts: Sequence[Any] | None = None,
        defer_until: str | None = None,
        no_defer: bool = False,
    ) -> RequestRecord:
        """A different person, holding ``appeal_reviewer`` at the holder, decides the appeal.

        Overturning a refusal releases what the policy permits (never more); overturning a
        release records that it should not have happened. Returns the full record.
        """
        deciding.decide_appeal(self, id, reviewer_id, uphold, facts, defer_until, no_defer)
        return self.get(id)

    def record_appeal_decision(
        self,
        id: str,
        reviewer_id: str,
        uphold: bool,
        *,
        facts: Sequence[Any] | None = None,
        defer_until: str | None = None,
        no_defer: bool = False,
    ) -> RequestSummary:
        """:meth:`decide_appeal`, returning only the request's summary."""
        deciding.decide_appeal(self, id, reviewer_id, uphold, facts, defer_until, no_defer)
        return self.summary(id)

    def withdraw(self, id: str, by_org: str) -> RequestRecord:
        """The requester withdraws a request not yet reviewed; a ``withdrawal`` entry says so."""
        lodging.withdraw(self, id, by_org)
        return self.get(id)

    def deferrals(self, holder: str | None = None, *, due_by: str | None = None) -> list[Deferral]:
        """Requests whose notices are deferred; ``due_by`` (ISO date): review date reached."""
        return list_deferrals(self.store, holder, due_by)

    def lift_deferral(self, request_id: str, reviewer_id: str) -> RequestRecord:
        """Send a request's deferred notices now: telling the subjects no longer prejudices."""
        return self._deferral(request_id, reviewer_id, None)

    def renew_deferral(self, request_id: str, reviewer_id: str, until: str) -> RequestRecord:
        """Keep a request's notices deferred until ``until`` (at most 90 days ahead)."""
        return self._deferral(request_id, reviewer_id, until)

    def _deferral(self, request_id: str, reviewer_id: str, until: str | None) -> RequestRecord:
        register = self.register()
        job: QueuedJob | None = None
        with self._write() as conn:
            row = self._lock_row(conn, request_id)
            self._check_reviewer(register, reviewer_id, row.holder, "release_reviewer")
            now = le.rfc3339(self.clock())
            change_deferral(self, conn, row, reviewer_id, now, until)
            if until is None:  # lifted: the notices are due now, and a job delivers them
                total = released_count(row)
                job = queue_notices(self, conn, request_id, now, total=total, record=True)
        self._after_commit(job)
        return self.get(request_id)

    def record_admin(
        self, organisation: str, actor: str, action: str, details: Sequence[Mapping[str, Any]]
    ) -> None:
        """Write rows to the private admin log (ids only), one per detail, in one transaction.

        For what a person looked at or exported (a DPO reading a letter): written before it
        is shown, so nothing is shown that was not recorded.
        """
        if not details:
            return
        now = le.rfc3339(self.clock())
        with self._writer_turn, self.store.write() as conn:
            for detail in details:
                record_admin(conn, now, organisation, actor, action, detail)

    def _after_commit(self, job: QueuedJob | None = None) -> None:
        """Run at once the job the caller queued claimed (small, or no background worker)."""
        after_commit(self, job)

    def record_deletion(
        self,
        certificate: str,
        body: Mapping[str, Any],
        *,
        before_commit: Callable[[], None] | None = None,
    ) -> int:
        """Append the ``deletion`` entry for a signed certificate (see service/deletions.py);
        ``before_commit`` (the purged source's commit) runs last inside the transaction."""
        from carewall.service.deletions import record_deletion

        return record_deletion(self, self._write, certificate, body, before_commit)

    # ----- agreements (service/agreements.py) ----------------------------------------

    def register_agreement(self, agreement: Any) -> Any:
        """Decide and log a standing agreement (``registered`` or ``refused``)."""
        from carewall.service import agreements

        return agreements.register_agreement(self, self._write, agreement)

    def withdraw_agreement(self, agreement_id: str, *, due_days: int | None = None) -> Any:
        """Withdraw it, count what went under it, and ask for its destruction."""
        from carewall.service import agreements

        days = agreements.DEFAULT_DUE_DAYS if due_days is None else due_days
        return agreements.withdraw_agreement(self, self._write, agreement_id, due_days=days)

    def agreement_destroyed(
        self, agreement_id: str, certificate: bytes, recipient_key: str | None = None
    ) -> Any:
        """Register the recipient's deletion certificate for a withdrawn agreement."""
        from carewall.service import agreements

        return agreements.destroyed(self, self._write, agreement_id, certificate, recipient_key)
