"""Options every command that opens an instance shares: ``--db`` and ``--key``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["db_and_key", "db_option", "key_option"]

_F = TypeVar("_F", bound=Callable[..., Any])

db_option = click.option(
    "--db", "db", default=None, help="Database URL or path (default $CAREWALL_DB or ./carewall.db)."
)
key_option = click.option(
    "--key",
    "key",
    default=None,
    type=click.Path(dir_okay=False),
    help="Log signing key file (default $CAREWALL_KEY or <db>.key).",
)


def db_and_key(f: _F) -> _F:
    """Both options, ``--db`` first."""
    return db_option(key_option(f))
