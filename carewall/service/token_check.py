"""The API token a submit is made with, confirmed live in the transaction that records it.

The API answers a submit from a token it has seen live moments before
(:class:`carewall.api.token_cache.TokenCache`), with no database read of its own; the
token is then read again here, under the ledger's lock in the recording transaction, in
the same round trip as the ledger's head (:meth:`RegisterPolicyMixin._confirm`). A token
revoked before that read, by this process or any other (``carewall token revoke``, an
organisation or reviewer retired), records nothing: the submit is refused with a 401 and
the transaction rolls back. That is at least as strict as reading the token when the
request arrived: a revocation committed while the request was being decided counts too.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from carewall.errors import AuthError
from carewall.storage.db import placeholder

__all__ = ["live_tokens_read", "refuse_unless_live"]


def live_tokens_read(conn: Connection, ids: Collection[str]) -> tuple[str, tuple[str, ...]]:
    """The driver SQL and parameters that read which of ``ids`` are live tokens."""
    wanted = tuple(sorted(set(ids)))
    marks = ", ".join([placeholder(conn)] * len(wanted))
    sql = f"SELECT id FROM api_tokens WHERE revoked_at IS NULL AND id IN ({marks})"
    return sql, wanted


def refuse_unless_live(ids: Collection[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """AuthError unless every one of ``ids`` is among the live ones ``rows`` name."""
    live = {str(r[0]) for r in rows}
    if any(i not in live for i in ids):
        raise AuthError(
            "the token is unknown or revoked; nothing was recorded",
            fix="ask an administrator for a token",
        )
