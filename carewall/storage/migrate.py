"""Versioned schema migrations (Alembic), run in-process.

The migration scripts live in ``carewall/storage/migrations/versions``; each is numbered
(``0001_ledger``, ``0002_service``, …) and chained by ``down_revision``.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from carewall.storage.db import Store, translate_errors

__all__ = ["current_revision", "head_revision", "upgrade"]


def _config(store: Store) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("carewall.storage") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", store.url)
    return cfg


def upgrade(store: Store, revision: str = "head") -> None:
    """Bring the schema up to ``revision``; safe to run on an up-to-date database."""
    cfg = _config(store)
    with translate_errors(), store.writer.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def head_revision(store: Store) -> str | None:
    return ScriptDirectory.from_config(_config(store)).get_current_head()


def current_revision(store: Store) -> str | None:
    with store.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()
