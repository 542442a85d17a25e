"""Connecting to a PostgreSQL data source: the one place a scan, a purge or an extract opens one.

The URL holds the credentials, so a failure is a :class:`~carewall.errors.ScanError` naming
the field (``SOURCE``) and the fix, never the URL or its password; the driver's error is
chained as the cause. psycopg is imported only when a connection is asked for, so reading
files never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from carewall.errors import ScanError

if TYPE_CHECKING:
    import psycopg

__all__ = ["CONNECT_TIMEOUT", "connect_postgres"]

CONNECT_TIMEOUT = 10  # seconds: an unreachable server fails the command, not hangs it


def connect_postgres(url: str) -> psycopg.Connection[Any]:
    """A new connection to the PostgreSQL database at ``url`` (``postgresql://…``).

    A URL psycopg cannot parse, an unreachable server and refused credentials all raise
    the same ScanError: psycopg's own message may quote the URL, password and all."""
    import psycopg

    try:
        return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT)
    except psycopg.Error as e:
        raise ScanError(
            "cannot connect to the PostgreSQL database",
            field="SOURCE",
            fix="check the URL, that the server is running, and the credentials",
        ) from e
