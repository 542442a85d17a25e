"""Versioned schema migrations (Alembic), run in-process.

The migration scripts live in ``carewall/storage/migrations/versions``; each is numbered
(``0001_ledger``, ``0002_service``, …) and chained by ``down_revision``.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from carewall.storage.db import Store, translate_errors

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic (~0.3 s to import) is imported by the functions that use it, so a command that
# only opens an existing ledger (`carewall ledger verify`, `proof`, …) never loads it.

__all__ = ["current_revision", "downgrade", "head_revision", "upgrade", "upgrade_with_alembic"]


def _config(store: Store) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("carewall.storage") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", store.url)
    return cfg


def upgrade(store: Store, revision: str = "head") -> None:
    """Bring the schema up to ``revision``; safe to run on an up-to-date database.

    A new, empty SQLite database brought to the newest revision is given the migrations'
    snapshot in one transaction instead (:mod:`carewall.storage.baseline`).
    """
    if revision == "head" and store.is_sqlite:
        from carewall.storage.baseline import create_if_empty

        with translate_errors(), store.writer.begin() as conn:
            if create_if_empty(conn):
                return
    upgrade_with_alembic(store, revision)


def upgrade_with_alembic(store: Store, revision: str = "head") -> None:
    """Run every migration from the database's revision to ``revision`` with Alembic."""
    from alembic import command

    cfg = _config(store)
    with translate_errors(), store.writer.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(store: Store, revision: str) -> None:
    """Take the schema back to ``revision`` with Alembic (each migration's ``downgrade``)."""
    from alembic import command

    cfg = _config(store)
    with translate_errors(), store.writer.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def head_revision(store: Store) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config(store)).get_current_head()


def current_revision(store: Store) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with store.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()
