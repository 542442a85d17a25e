"""Creating an instance (schema, register, the pledge as ledger entry 0, a log key) and
opening an existing one (schema upgraded, the stored policy checked to load).

A failed creation leaves nothing behind: no database file or tables, no key file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from carewall.errors import ConflictError, InputError, NotFoundError
from carewall.ledger import Ledger, check_origin
from carewall.ledger.keys import default_key_path
from carewall.policy import DEFAULT_REGISTER_PATH, Engine, load_register
from carewall.service import logentries as le
from carewall.service import tables as t
from carewall.service.notices import Channel
from carewall.service.registry import register_entries, write_register
from carewall.service.releasing import DEFAULT_DEFERRAL_DAYS
from carewall.storage.db import Store, open_store
from carewall.storage.migrate import current_revision, head_revision, upgrade
from carewall.storage.undo import InitUndo

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from carewall.service.facade import Service

__all__ = ["create", "open_existing"]


def create(
    cls: type[Service],
    db_url: str | None,
    orgs_path: str | Path | None,
    origin: str | None,
    key_path: str | Path | None,
    channel: Channel | None,
    operator: str | None,
    durable: bool,
    clock: Callable[[], datetime] | None = None,
) -> Service:
    """:meth:`Service.init`: a new instance, or nothing at all when anything fails."""
    register = load_register(orgs_path or DEFAULT_REGISTER_PATH)
    if operator is not None:
        org = register.organisation(operator, field_name="--operator")
        if org.function == "immigration_enforcement":
            raise InputError(
                "an immigration-enforcement body cannot run a carewall instance",
                field="--operator",
                fix="name the public body that holds the data",
            )
    engine = Engine.load(None)
    origin = check_origin(origin or "carewall.example/log")  # a bad one creates nothing
    key = Path(key_path) if key_path else default_key_path(db_url)
    # A failed init leaves nothing behind: no database file or tables, no key file.
    undo = InitUndo(db_url)
    try:
        store = open_store(db_url, durable=durable)
        undo.watch(store)
        upgrade(store)
        if _holds_instance(store):
            raise ConflictError(
                "this database already holds a carewall instance",
                field="--db",
                fix="use `carewall serve` on it, or choose a new database",
            )
        ledger = Ledger.create(store, origin, key)
        undo.key_created(key)
        svc = cls(store, ledger, channel)
        if clock is not None:
            svc.clock = clock
        with store.write() as conn:
            write_register(conn, register)
            conn.execute(
                t.settings.insert(),
                [
                    {"key": "local_policy", "value": ""},
                    {"key": "register_version", "value": "1"},
                    {"key": "deferral_days", "value": str(DEFAULT_DEFERRAL_DAYS)},
                    {"key": "operator", "value": operator or ""},
                ],
            )
            now = le.rfc3339(svc.clock())
            ledger.append_in(
                conn, [svc._policy_entry(engine, "init"), *register_entries(register, now)]
            )
        ledger.publish()
    except BaseException:
        undo.undo()
        raise
    undo.done()
    return svc


def open_existing(
    cls: type[Service],
    db_url: str | None,
    key_path: str | Path | None,
    channel: Channel | None,
) -> Service:
    """:meth:`Service.open`: the schema upgraded if behind, the stored policy checked to load."""
    store = open_store(db_url)
    # Alembic is not thread-safe, so only run it when the schema is actually behind.
    if current_revision(store) != head_revision(store):
        upgrade(store)
    if not _holds_instance(store):
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


def _holds_instance(store: Store) -> bool:
    """Whether the database holds an instance's settings (every init writes them)."""
    with store.read() as conn:
        return conn.execute(sa.select(t.settings.c.key).limit(1)).first() is not None
