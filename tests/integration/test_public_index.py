"""The public index names the configured public URL, never the request's Host (item 8).

A page that builds its audit command from the Host header can be made, by whoever sends
the request (or poisons a cache in front of it), to send auditors to a log of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import free_port, init_service, uvicorn_server
from click.testing import CliRunner
from fastapi.testclient import TestClient

from carewall.api.app import create_app
from carewall.api.index import check_public_url
from carewall.cli import main
from carewall.errors import InputError
from carewall.service import Service

EVIL = "evil.example"
PUBLIC = "https://carewall.example.gov.uk/"


@pytest.fixture
def svc(sqlite_url: str, tmp_path: Path) -> Iterator[Service]:
    s = init_service(sqlite_url, tmp_path)
    try:
        yield s
    finally:
        s.close()


def index_with_host(client: TestClient | httpx.Client, host: str) -> httpx.Response:
    r = client.get("/", headers={"Host": host, "X-Forwarded-Host": host})
    assert r.status_code == 200, r.text
    return r


def test_the_configured_url_not_the_host_header(svc: Service) -> None:
    with TestClient(create_app(svc, public_url=PUBLIC)) as client:
        r = index_with_host(client, EVIL)
    assert EVIL not in r.text
    log = r.json()["log"]
    assert log["url"] == PUBLIC
    assert log["audit"] == f"carewall audit {PUBLIC} --key {svc.ledger.verifier_key}"


def test_without_a_configured_url_the_host_is_still_never_used(svc: Service) -> None:
    with TestClient(create_app(svc)) as client:
        r = index_with_host(client, EVIL)
    assert EVIL not in r.text and "testserver" not in r.text
    assert r.json()["log"]["url"] is None
    assert r.json()["log"]["audit"].startswith("carewall audit URL --key ")


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("no scheme", "carewall.example.gov.uk"),
        ("ftp", "ftp://carewall.example/"),
        ("javascript", "javascript:alert(1)"),
        ("credentials", "https://admin:s3cret@carewall.example/"),
        ("user only", "https://admin@carewall.example/"),
        ("no host", "https:///log"),
        ("port out of range", "https://carewall.example:99999/"),
        ("port not a number", "https://carewall.example:http/"),
        ("port zero", "https://carewall.example:0/"),
        ("query", "https://carewall.example/?next=evil"),
        ("fragment", "https://carewall.example/#top"),
        ("space", "https://carewall.example/a b"),
        ("newline", "https://carewall.example/\nX-Evil: 1"),
        ("non-ascii", "https://carewáll.example/"),
        ("empty", ""),
    ],
)
def test_bad_public_urls_are_refused(svc: Service, name: str, url: str) -> None:
    with pytest.raises(InputError) as e:
        create_app(svc, public_url=url)
    assert e.value.field == "public_url" and e.value.fix, name
    assert "s3cret" not in e.value.human()


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://carewall.example.gov.uk", "https://carewall.example.gov.uk/"),
        ("HTTPS://Carewall.Example:8443/log", "https://carewall.example:8443/log/"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/"),
        ("http://[::1]:8000/", "http://[::1]:8000/"),
    ],
)
def test_good_public_urls_are_normalised(given: str, stored: str) -> None:
    assert check_public_url(given) == stored


def test_serve_refuses_a_bad_public_url_before_serving(svc: Service, sqlite_url: str) -> None:
    runner = CliRunner()
    base = ["serve", "--db", sqlite_url, "--port", str(free_port())]
    r = runner.invoke(main, [*base, "--public-url", "https://u:s3cret@x.example/"])
    assert r.exit_code == InputError.exit_code
    assert "--public-url" in r.output and "s3cret" not in r.output
    r = runner.invoke(main, base, env={"CAREWALL_PUBLIC_URL": "ftp://x.example/"})
    assert r.exit_code == InputError.exit_code and "--public-url" in r.output
    assert "--public-url URL" in runner.invoke(main, ["serve", "--help"]).output


def test_real_server_default_and_configured(svc: Service, sqlite_url: str, tmp_path: Path) -> None:
    key, log = tmp_path / "log.key", tmp_path / "serve.log"
    env = {"CAREWALL_PUBLIC_URL": ""}
    with uvicorn_server(sqlite_url, key, log, env=env) as base, httpx.Client(base_url=base) as c:
        r = index_with_host(c, EVIL)
        assert EVIL not in r.text
        assert r.json()["log"]["audit"].startswith(f"carewall audit {base}/ --key ")
    with (
        uvicorn_server(sqlite_url, key, log, "--public-url", PUBLIC, env=env) as base,
        httpx.Client(base_url=base) as c,
    ):
        r = index_with_host(c, EVIL)
        assert EVIL not in r.text and r.json()["log"]["url"] == PUBLIC
    env = {"CAREWALL_PUBLIC_URL": "https://log.example.org/carewall"}
    with uvicorn_server(sqlite_url, key, log, env=env) as base, httpx.Client(base_url=base) as c:
        r = index_with_host(c, EVIL)
        assert r.json()["log"]["url"] == "https://log.example.org/carewall/"


def test_every_log_route_answers_cross_origin_reads(tmp_path: Path) -> None:
    """Contract §6: a monitor in a browser may follow /log/ from any origin; the rest may not."""
    from api_support import api

    with api(f"sqlite:///{tmp_path / 'cors.db'}", tmp_path) as (client, _service, _tokens):
        for path in (
            "/log/checkpoint",
            "/log/key",
            "/log/schema",
            "/log/tile/entries/000.p/3",
            "/log/entries?start=0&end=2",
            "/log/proof/inclusion?index=0&size=2",
        ):
            r = client.get(path, headers={"Origin": "https://monitor.example"})
            assert r.status_code == 200, (path, r.text)
            assert r.headers["access-control-allow-origin"] == "*", path
            assert r.headers["cross-origin-resource-policy"] == "cross-origin", path
        r = client.get("/api/queue", headers={"Origin": "https://monitor.example"})
        assert "access-control-allow-origin" not in r.headers
