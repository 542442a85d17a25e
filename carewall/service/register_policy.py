"""Register and policy administration for :class:`~carewall.service.facade.Service`.

The register and the local policy live in the database, so several server processes share
them; each process keeps only their parsed forms, keyed by a version read on every use.
Every policy change is a ``policy`` ledger entry, and every register change (organisations
added or retired, reviewers added, given new roles or retired) its ``organisation`` or
``reviewer`` entries, in the same transaction as the change itself.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from carewall.errors import ConflictError
from carewall.ids import check_id
from carewall.ledger.sequencer import Head
from carewall.policy import Engine, Organisation, Register, Reviewer
from carewall.policy.register import make_organisation, make_reviewer
from carewall.service import logentries as le
from carewall.service import tables as t
from carewall.service.registry import (
    AdminRecord,
    RegisterEntry,
    admin_log,
    change_entries,
    read_register,
    record_admin,
    revoke_tokens_in,
    write_changes,
)
from carewall.service.token_check import live_tokens_read, refuse_unless_live
from carewall.text import check_text

if TYPE_CHECKING:
    from carewall.ledger import Ledger
    from carewall.storage.db import Store

__all__ = ["Logged", "RegisterChange", "RegisterPolicyMixin"]

_Record = TypeVar("_Record", Organisation, Reviewer)

_SETTING = sa.select(t.settings.c.value).where(t.settings.c.key == sa.bindparam("key"))
_SET_SETTING = t.settings.update().where(t.settings.c.key == sa.bindparam("k"))
# Read under the ledger's lock by every submit: one primary-key probe per key (SQLite runs
# an IN list through a temporary table built for each execution, a third of the read).
_HOT_SETTINGS_SQL = (
    "SELECT key, value FROM svc_settings WHERE key = 'register_version' "
    "UNION ALL SELECT key, value FROM svc_settings WHERE key = 'local_policy'"
)
_HOT_SETTINGS = sa.select(t.settings.c.key, t.settings.c.value).where(
    t.settings.c.key.in_(["register_version", "local_policy"])
)


@dataclass(frozen=True)
class Logged:
    """One public register entry a change wrote: what, which id, and where in the log."""

    kind: Literal["organisation", "reviewer"]
    id: str
    change: Literal["add", "update", "retire"]
    log_index: int


@dataclass(frozen=True)
class RegisterChange(Generic[_Record]):
    """A register change: the record as it now stands and the entries logged, in order."""

    record: _Record
    logged: tuple[Logged, ...]


class RegisterPolicyMixin:
    """The register (organisations, reviewers) and the local policy."""

    if TYPE_CHECKING:
        store: Store
        ledger: Ledger
        clock: Callable[[], datetime]
        _register: tuple[str, Register] | None
        _engines: dict[str, Engine]

        def _write(self) -> AbstractContextManager[Connection]: ...

    def _setting(self, conn: Connection, key: str) -> str:
        value = conn.execute(_SETTING, {"key": key}).scalar_one_or_none()
        return value or ""

    def _set(self, conn: Connection, key: str, value: str) -> None:
        conn.execute(_SET_SETTING, {"k": key, "value": value})

    def _register_for(self, conn: Connection, version: str) -> Register:
        # The version is bumped in the same transaction as every register change, so an
        # unchanged version means an unchanged register, whichever process changed it.
        cached = self._register
        if cached is None or cached[0] != version:
            cached = (version, read_register(conn))
            self._register = cached
        return cached[1]

    def _engine_for(self, text: str) -> Engine:
        engines = self._engines
        engine = engines.get(text)
        if engine is None:
            engine = Engine.load(text or None)
            self._engines = {text: engine}
        return engine

    def register(self, conn: Connection | None = None) -> Register:
        """The current register (re-read when another process has changed it)."""
        if conn is None:
            with self.store.read() as c:
                return self.register(c)
        return self._register_for(conn, self._setting(conn, "register_version"))

    def register_locked(self, conn: Connection) -> Register:
        """The register, for a writer that depends on it (e.g. issuing a token).

        On PostgreSQL the version row stays locked until ``conn`` commits, so no register
        change interleaves; SQLite has one writer at a time anyway.
        """
        query = _SETTING.with_for_update()
        version = conn.execute(query, {"key": "register_version"}).scalar_one_or_none()
        return self._register_for(conn, version or "")

    def engine(self, conn: Connection | None = None) -> Engine:
        """The policy engine for the stored local policy (pledge always included)."""
        if conn is None:
            with self.store.read() as c:
                return self.engine(c)
        return self._engine_for(self._setting(conn, "local_policy"))

    def _current(self, *, reread: bool = False) -> tuple[Register, Engine]:
        """The register and engine this process last saw (read when it has seen none, or
        with ``reread``).

        Not authoritative: another process may have changed either since. A writer that
        decides with them confirms them under the ledger's lock with :meth:`_confirm`.
        """
        register, engines = self._register, self._engines
        if register is not None and len(engines) == 1 and not reread:
            return register[1], next(iter(engines.values()))
        with self.store.read() as conn:
            values: dict[str, str] = {r[0]: r[1] for r in conn.execute(_HOT_SETTINGS)}
            fresh = self._register_for(conn, values.get("register_version") or "")
        return fresh, self._engine_for(values.get("local_policy") or "")

    def _confirm(
        self,
        conn: Connection,
        register: Register,
        engine: Engine,
        tokens: Collection[str] = (),
    ) -> tuple[Head, tuple[Register, Engine] | None]:
        """Inside a writer transaction, before appending: take the ledger's lock and read
        its head and the stored settings (one round trip on PostgreSQL). Returns the head
        for the append, and None if ``register`` and ``engine`` are the stored ones, else
        the stored pair, for the caller to decide again.

        Every policy or register change appends to the ledger under that lock, so none can
        commit between this read and the caller's commit: the caller's entries follow the
        settings they were decided under.

        ``tokens``: the ids of the API tokens the write is made with, read in the same
        round trip; AuthError (nothing is written) unless every one is live
        (:mod:`carewall.service.token_check`).
        """
        reads: list[tuple[str, tuple[str, ...]]] = [(_HOT_SETTINGS_SQL, ())]
        if tokens:
            reads.append(live_tokens_read(conn, tokens))
        head, got = self.ledger.head_in(conn, reads)
        if tokens:
            refuse_unless_live(tokens, got[1])
        values: dict[str, str] = {str(k): str(v) for k, v in got[0]}
        stored_register = self._register_for(conn, values.get("register_version") or "")
        stored_engine = self._engine_for(values.get("local_policy") or "")
        if stored_register is register and stored_engine is engine:
            return head, None
        return head, (stored_register, stored_engine)

    def _policy_entry(self, engine: Engine, change: Literal["init", "update"]) -> dict[str, Any]:
        return dict(
            le.policy_entry(
                policy=engine.policy_hash,
                pledge=engine.pledge_hash,
                rules=engine.rule_ids,
                change=change,
                text=engine.local_text,
                time=le.rfc3339(self.clock()),
            )
        )

    def set_local_policy(self, text: str) -> str:
        """Replace the local policy (the pledge stays: Engine.load refuses otherwise).

        Logs a ``policy`` entry; returns the new policy hash.
        """
        check_text(text, field="text", kind="verbatim")  # no NUL or lone surrogate: see text.py
        engine = Engine.load(text or None)
        with self._write() as conn:
            self._set(conn, "local_policy", text)
            self.ledger.append_in(conn, [self._policy_entry(engine, "update")])
        self._engines = {text: engine}
        return str(engine.policy_hash)

    def operator(self) -> str | None:
        """The organisation running this instance, if one was named at init."""
        with self.store.read() as conn:
            return self._setting(conn, "operator") or None

    def local_policy(self) -> str:
        with self.store.read() as conn:
            return self._setting(conn, "local_policy")

    # ----- the register: every change is logged in its own transaction ------------------

    def _bump_register_version(self, conn: Connection) -> None:
        # An UPDATE first: on PostgreSQL its row lock queues concurrent register changes, so
        # each reads the register as the one before it left it (SQLite has one writer).
        value = sa.cast(sa.cast(t.settings.c.value, sa.Integer) + 1, sa.String)
        conn.execute(
            t.settings.update().where(t.settings.c.key == "register_version").values(value=value)
        )

    def _change_register(
        self,
        change: Callable[[Register, str], Register],
        actor: str,
    ) -> tuple[Register, tuple[Logged, ...]]:
        """Apply ``change`` to the stored register and log every entry it makes, atomically.

        The rows, the ``register_version`` bump, the public ``organisation``/``reviewer``
        entries and the private admin record commit together or not at all.
        """
        with self._write() as conn:
            self._bump_register_version(conn)
            # Read afresh, never from the cache: this transaction may yet roll back.
            before = read_register(conn)
            now = le.rfc3339(self.clock())
            after = change(before, now)
            entries = change_entries(before, after, now)
            write_changes(conn, before, after)
            indexes = self.ledger.append_in(conn, [e.entry for e in entries])
            logged = tuple(
                Logged(e.kind, e.id, e.change, i) for e, i in zip(entries, indexes, strict=True)
            )
            for e, i in zip(entries, indexes, strict=True):
                detail = {"id": e.id, "log_index": i}
                record_admin(conn, now, e.organisation, actor, f"{e.kind}_{e.change}", detail)
                if e.change == "retire" or (e.change == "update" and e.kind == "reviewer"):
                    self._revoke_for(conn, after, e, now, actor)
        return after, logged

    @staticmethod
    def _revoke_for(
        conn: Connection, after: Register, e: RegisterEntry, now: str, actor: str
    ) -> None:
        # What is retired (or loses a role) stops working through the API at once.
        if e.kind == "organisation":
            revoked = revoke_tokens_in(conn, now, organisation=e.id)
        elif e.change == "retire":
            revoked = revoke_tokens_in(conn, now, reviewer=e.id)
        else:
            kept = after.reviewers[e.id].roles
            revoked = revoke_tokens_in(conn, now, reviewer=e.id, roles_kept=kept)
        for token_id, org in revoked:
            detail = {"token": token_id, "because": f"{e.kind}_{e.change}", "id": e.id}
            record_admin(conn, now, org, actor, "token_revoke", detail)

    def add_organisation(
        self, id: str, name: str, function: str, *, actor: str = "service"
    ) -> RegisterChange[Organisation]:
        """Register an organisation; logs an ``organisation`` ``add`` entry.

        InputError names a bad field (an id that is not an id, a blank or unprintable name,
        an unknown function, a name that names immigration enforcement without that
        function); ConflictError when the id is taken, even by a retired organisation.
        """
        org = make_organisation(id, name, function)
        after, logged = self._change_register(lambda r, _: r.with_organisation(org), actor)
        return RegisterChange(after.organisations[org.id], logged)

    def retire_organisation(
        self, id: str, *, actor: str = "service"
    ) -> RegisterChange[Organisation]:
        """Retire an organisation and its reviewers (logged); it can no longer ask or hold.

        Its id stays taken: a body that changes function is registered under a new id.
        """
        check_id(id, "organisation", field="id")
        after, logged = self._change_register(lambda r, at: r.retiring_organisation(id, at), actor)
        return RegisterChange(after.retired_organisations[id], logged)

    def add_reviewer(
        self,
        id: str,
        name: str,
        organisation: str,
        roles: Iterable[str],
        *,
        actor: str = "service",
    ) -> RegisterChange[Reviewer]:
        """Add a reviewer (roles from ``release_reviewer``/``appeal_reviewer``); logged.

        The reviewer's name is kept privately; the public entry holds its id, organisation
        and roles only.
        """
        rev = make_reviewer(id, name, organisation, sorted(roles))
        after, logged = self._change_register(lambda r, _: r.with_reviewer(rev), actor)
        return RegisterChange(after.reviewers[rev.id], logged)

    def update_reviewer_roles(
        self, id: str, roles: Iterable[str], *, actor: str = "service"
    ) -> RegisterChange[Reviewer]:
        """Replace an active reviewer's roles (a ``reviewer`` ``update`` entry).

        Tokens for roles the reviewer no longer holds are revoked.
        """
        check_id(id, "reviewer", field="id")
        wanted = sorted(set(roles))

        def change(reg: Register, _: str) -> Register:
            current = reg.reviewers.get(id)
            if current is not None and sorted(current.roles) == wanted:
                raise ConflictError(
                    "the reviewer already holds exactly these roles",
                    field="roles",
                    fix="give the full new list of roles",
                )
            return reg.with_roles(id, wanted)

        after, logged = self._change_register(change, actor)
        return RegisterChange(after.reviewers[id], logged)

    def retire_reviewer(self, id: str, *, actor: str = "service") -> RegisterChange[Reviewer]:
        """Retire a reviewer (logged); it can no longer review, and its tokens are revoked."""
        check_id(id, "reviewer", field="id")
        after, logged = self._change_register(lambda r, at: r.retiring_reviewer(id, at), actor)
        return RegisterChange(after.retired_reviewers[id], logged)

    def admin_log(self, organisation: str | None = None) -> list[AdminRecord]:
        """What administrators did (tokens, register changes); one organisation's if given."""
        with self.store.read() as conn:
            return admin_log(conn, organisation)
