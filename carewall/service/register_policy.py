"""Register and policy administration for :class:`~carewall.service.facade.Service`.

The register and the local policy live in the database, so several server processes share
them; each process keeps only their parsed forms, keyed by a version read on every use.
Every policy change is a ``policy`` ledger entry in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from carewall.errors import ConflictError
from carewall.policy import Engine, Organisation, Register, Reviewer
from carewall.service import logentries as le
from carewall.service import tables as t
from carewall.service.registry import read_register, render_register, write_register

if TYPE_CHECKING:
    from carewall.ledger import Ledger
    from carewall.storage.db import Store

__all__ = ["RegisterPolicyMixin"]

_SETTING = sa.select(t.settings.c.value).where(t.settings.c.key == sa.bindparam("key"))
_SET_SETTING = t.settings.update().where(t.settings.c.key == sa.bindparam("k"))
_HOT_SETTINGS = sa.select(t.settings.c.key, t.settings.c.value).where(
    t.settings.c.key.in_(["register_version", "local_policy"])
)


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

    def engine(self, conn: Connection | None = None) -> Engine:
        """The policy engine for the stored local policy (pledge always included)."""
        if conn is None:
            with self.store.read() as c:
                return self.engine(c)
        return self._engine_for(self._setting(conn, "local_policy"))

    def _current(self) -> tuple[Register, Engine]:
        """The register and the engine, checked against the database in one query.

        Both settings are read on every call, so a change made by another process is seen
        by the next request; only the parsed forms are kept.
        """
        with self.store.read() as conn:
            values: dict[str, str] = {r[0]: r[1] for r in conn.execute(_HOT_SETTINGS)}
            register = self._register_for(conn, values.get("register_version") or "")
        return register, self._engine_for(values.get("local_policy") or "")

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
        engine = Engine.load(text or None)
        with self._write() as conn:
            self._set(conn, "local_policy", text)
            self.ledger.append_in(conn, [self._policy_entry(engine, "update")])
        self._engines = {text: engine}
        return str(engine.policy_hash)

    def local_policy(self) -> str:
        with self.store.read() as conn:
            return self._setting(conn, "local_policy")

    def _change_register(self, conn: Connection, register: Register) -> None:
        write_register(conn, register)
        version = int(self._setting(conn, "register_version") or "0") + 1
        self._set(conn, "register_version", str(version))

    def add_organisation(self, id: str, name: str, function: str) -> Organisation:
        """Add an organisation to the register (InputError names a bad field)."""
        with self._write() as conn:
            current = self.register(conn)
            if id in current.organisations:
                raise ConflictError("the organisation is already registered", field="id")
            merged = self._merged(current, orgs=[(id, name, function)])
            self._change_register(conn, merged)
        return merged.organisations[id]

    def add_reviewer(
        self, id: str, name: str, organisation: str, roles: list[str] | frozenset[str]
    ) -> Reviewer:
        """Add a reviewer to the register (roles from ``release_reviewer``/``appeal_reviewer``)."""
        with self._write() as conn:
            current = self.register(conn)
            if id in current.reviewers:
                raise ConflictError("the reviewer is already registered", field="id")
            merged = self._merged(current, revs=[(id, name, organisation, sorted(roles))])
            self._change_register(conn, merged)
        return merged.reviewers[id]

    @staticmethod
    def _merged(
        reg: Register,
        orgs: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
        revs: list[tuple[str, str, str, list[str]]] = (),  # type: ignore[assignment]
    ) -> Register:
        from carewall.policy import parse_register

        return parse_register(
            render_register(
                [(o.id, o.name, o.function) for o in reg.organisations.values()] + list(orgs),
                [(r.id, r.name, r.organisation, sorted(r.roles)) for r in reg.reviewers.values()]
                + list(revs),
            )
        )
