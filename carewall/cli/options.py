"""Options every command that opens an instance shares: ``--db``, ``--key``, and the pinned
log key (``--log-key`` / ``--log-key-file``) for the commands that check or serve the log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["db_and_key", "db_option", "key_option", "log_key_options"]

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


def log_key_options(f: _F) -> _F:
    """``--log-key VKEY`` and ``--log-key-file FILE``: the published verifier key to pin.

    Parsed by :func:`carewall.ledger.pin.resolve_pin`, which also reads ``$CAREWALL_LOG_VKEY``
    or ``$CAREWALL_LOG_VKEY_FILE`` when neither option is given.
    """
    f = click.option(
        "--log-key-file",
        "log_key_file",
        default=None,
        metavar="FILE",
        type=click.Path(dir_okay=False),
        help="File holding the published verifier key, e.g. the .vkey file `carewall init` "
        "wrote (default $CAREWALL_LOG_VKEY_FILE).",
    )(f)
    return click.option(
        "--log-key",
        "log_key",
        default=None,
        metavar="VKEY",
        help="The log's verifier key (name+hex8+base64) as the operator published it, never "
        "as the database or server reports it (default $CAREWALL_LOG_VKEY).",
    )(f)
