"""Idempotent submission: a retry with the same ``Idempotency-Key`` gets the first result.

A client that sent a request and then lost the connection cannot know whether it was
recorded. With a key, it simply sends it again: the first submission's result (request
id, outcome, log index) comes back and nothing is recorded twice. The same key with a
different document is refused (409), so a key reused by mistake never hides a request.

Keys belong to the requesting organisation (another organisation's identical key never
collides), are short printable ASCII, and expire after :data:`TTL`. The key is claimed
first in the submitting transaction (``INSERT … ON CONFLICT DO NOTHING``): on PostgreSQL a
concurrent claim of the same key waits for the first transaction and then sees its row; on
SQLite writers take turns anyway. So two retries racing never record two requests.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from carewall.errors import ConflictError, InputError
from carewall.service import tables as t
from carewall.service.logentries import rfc3339
from carewall.service.records import Replayed, Submitted

__all__ = ["KEY_PATTERN", "TTL", "check_key", "claim", "digest_of", "idempotency", "settle"]

TTL: Final = timedelta(hours=24)
# Printable ASCII that needs no quoting in a header or a shell: UUIDs, ULIDs, base64.
KEY_PATTERN: Final = re.compile(r"[A-Za-z0-9._~:+/=-]{1,128}")
_FIELD: Final = "idempotency_key"

idempotency = sa.Table(
    "svc_idempotency",
    t.metadata,
    sa.Column("requester", sa.String(100), primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("request_id", sa.String(40), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("log_index", sa.BigInteger),
    sa.Column("created_at", sa.String(20), nullable=False),
)


def check_key(value: object, field: str = _FIELD) -> str:
    """An idempotency key: 1 to 128 of ``A-Z a-z 0-9 . _ ~ : + / = -``.

    A key in double quotes (an RFC 8941 string, as the IETF draft writes it) is accepted
    without them.
    """
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not isinstance(value, str) or not KEY_PATTERN.fullmatch(value):
        raise InputError(
            "is not a valid idempotency key",
            field=field,
            fix="use 1 to 128 letters, digits or . _ ~ : + / = -, e.g. a random UUID",
        )
    return value


def digest_of(document: Mapping[str, Any], contacts: Mapping[int, str]) -> str:
    """SHA-256 of the validated document and the subjects' contacts, in a canonical form
    (so spacing and key order do not make a retry look like another request)."""
    text = json.dumps(
        [document, sorted(contacts.items())],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _insert(conn: Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    # RETURNING says whether the row went in (a driver's rowcount may be -1 here)
    return (
        dialect.insert(idempotency)
        .on_conflict_do_nothing(index_elements=["requester", "key"])
        .returning(idempotency.c.key)
    )


def claim(
    conn: Connection,
    requester: str,
    key: str,
    digest: str,
    first: Submitted,
    now: datetime,
) -> Replayed | None:
    """Claim ``key`` for the submission ``first`` (log index still to come), in ``conn``.

    Returns None when the key is new (or expired): go on and record the request, then call
    :func:`settle`. Returns the first result when the key was used for the same document;
    raises ConflictError when it was used for another.
    """
    conn.execute(idempotency.delete().where(idempotency.c.created_at < rfc3339(now - TTL)))
    row = {
        "requester": requester,
        "key": key,
        "digest": digest,
        "request_id": first.id,
        "outcome": first.outcome,
        "log_index": None,
        "created_at": rfc3339(now),
    }
    if conn.execute(_insert(conn), row).first() is not None:
        return None
    found = conn.execute(
        sa.select(idempotency).where(
            (idempotency.c.requester == requester) & (idempotency.c.key == key)
        )
    ).one()
    if found.digest != digest:
        raise ConflictError(
            "was already used for a different request",
            field=_FIELD,
            fix="use a new key for each new request; retry only with the same document",
        )
    return Replayed(id=found.request_id, outcome=found.outcome, log_index=found.log_index)


def settle(conn: Connection, requester: str, key: str, log_index: int) -> None:
    """Record the decision's log index on the claimed key, in the same transaction."""
    conn.execute(
        idempotency.update()
        .where((idempotency.c.requester == requester) & (idempotency.c.key == key))
        .values(log_index=log_index)
    )
