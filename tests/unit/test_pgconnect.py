"""Connecting to a PostgreSQL source: one ScanError for every failure, for a scan and for an
extract alike, that names the field and the fix but never the URL or its password."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import pytest

from carewall.clean.sources import open_source
from carewall.egress.reading import source_columns
from carewall.egress.sources import Source
from carewall.errors import ScanError
from carewall.pgconnect import connect_postgres

PASSWORD = "s3cret-Pa55"

# Named invalid URLs; psycopg's own messages quote some of them whole, password included.
BAD_URLS = {
    "unclosed IPv6 bracket": f"postgresql://carewall:{PASSWORD}@[::1/db",
    "port not a number": f"postgresql://carewall:{PASSWORD}@127.0.0.1:notaport/db",
    "unknown URI parameter": f"postgresql://carewall:{PASSWORD}@127.0.0.1:5432/db?bogus=1",
    "nothing listening": f"postgresql://carewall:{PASSWORD}@127.0.0.1:1/db",
}


def _scan(url: str) -> object:
    return open_source(url)


def _extract(url: str) -> object:
    return source_columns(Source.postgres(url, "t"))


OPENERS: dict[str, Callable[[str], object]] = {
    "helper": connect_postgres,
    "scan": _scan,
    "extract": _extract,
}


def _check(error: ScanError, url: str) -> None:
    assert error.message == "cannot connect to the PostgreSQL database"
    assert error.field == "SOURCE"
    assert error.fix == "check the URL, that the server is running, and the credentials"
    shown = error.human() + repr(error.diagnostics())
    assert PASSWORD not in shown and url not in shown


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("name", BAD_URLS)
def test_a_bad_url_or_server_is_one_scan_error(opener: str, name: str) -> None:
    url = BAD_URLS[name]
    with pytest.raises(ScanError) as e:
        OPENERS[opener](url)
    _check(e.value, url)
    assert e.value.__cause__ is not None  # the driver's error, chained


@pytest.mark.postgres
@pytest.mark.parametrize("opener", OPENERS)
def test_refused_credentials_are_one_scan_error(opener: str, pg_url: str) -> None:
    """A role the server does not know, on the server the tests use."""
    parts = urlsplit(pg_url)
    host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    url = urlunsplit(parts._replace(netloc=f"cw_no_such_role:{PASSWORD}@{host}"))
    with pytest.raises(ScanError) as e:
        OPENERS[opener](url)
    _check(e.value, url)


@pytest.mark.postgres
def test_the_helper_connects(pg_url: str) -> None:
    with connect_postgres(pg_url) as conn:
        row = conn.execute("SELECT 1").fetchone()
    assert row == (1,)
