"""Idempotent submission: a retry with the same ``Idempotency-Key`` returns the first result.

A client that saw a connection error cannot know whether its request was recorded; with a
key it sends it again and gets the first result back (200, ``Idempotent-Replayed: true``,
the same id), and nothing is recorded twice. The trial that matters is over a real server:
the client sends a submission and drops the connection before reading the answer, then
retries. Keys are per requesting organisation, validated, refused for a different
document (409 naming the key), not used up by a refused submission, and expire after a day.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from api_support import REQUESTER, START_UP, Tokens, init_service, reviewable, uvicorn_server
from click.testing import CliRunner
from fastapi.testclient import TestClient

from carewall.api.auth import create_token
from carewall.cli import main
from carewall.errors import ConflictError
from carewall.service import Service
from carewall.service.records import Replayed

KEY = "4f6c1f7e-5b8a-4c39-9d0e-2a7b3c4d5e6f"
REPLAYED = "Idempotent-Replayed"


def _submit(
    client: TestClient, tokens: Tokens, doc: dict[str, Any], key: str | None, who: str = "requester"
) -> httpx.Response:
    headers = tokens.auth(who) | ({"Idempotency-Key": key} if key is not None else {})
    return client.post("/api/requests", json=doc, headers=headers)


def test_a_retry_gets_the_first_result_and_records_nothing(
    served: tuple[TestClient, Service, Tokens],
) -> None:
    client, svc, tokens = served
    first = _submit(client, tokens, reviewable(), KEY)
    assert first.status_code == 201, first.text
    assert REPLAYED not in first.headers
    size = svc.ledger.size()
    again = _submit(client, tokens, reviewable(), KEY)
    assert again.status_code == 200, again.text
    assert again.headers[REPLAYED] == "true"
    assert again.json() == first.json()
    # the same document written another way (key order, spacing) is the same document
    spaced = json.dumps(dict(reversed(list(reviewable().items()))), indent=4)
    headers = tokens.auth("requester") | {"Idempotency-Key": f'"{KEY}"'}  # an RFC 8941 string
    third = client.post("/api/requests", content=spaced, headers=headers)
    assert (third.status_code, third.json()) == (200, first.json())
    assert [r.id for r in svc.list_requests()] == [first.json()["id"]]
    assert svc.ledger.size() == size
    # without a key, every submission is a new request, as before
    assert _submit(client, tokens, reviewable(), None).status_code == 201
    assert len(svc.list_requests()) == 2


def test_the_same_key_for_another_document_is_refused(
    served: tuple[TestClient, Service, Tokens],
) -> None:
    client, svc, tokens = served
    assert _submit(client, tokens, reviewable(), KEY).status_code == 201
    size = svc.ledger.size()
    other = _submit(client, tokens, reviewable(reference="MPS-2026-000124"), KEY)
    assert other.status_code == 409, other.text
    assert other.json()["field"] == "Idempotency-Key"
    assert len(svc.list_requests()) == 1 and svc.ledger.size() == size


def test_keys_belong_to_their_requester(served: tuple[TestClient, Service, Tokens]) -> None:
    client, _svc, tokens = served
    mine = _submit(client, tokens, reviewable(), KEY)
    theirs = _submit(client, tokens, reviewable(requester="dwp"), KEY, who="other_requester")
    assert (mine.status_code, theirs.status_code) == (201, 201), theirs.text
    assert mine.json()["id"] != theirs.json()["id"]


def test_a_refused_submission_does_not_use_up_the_key(
    served: tuple[TestClient, Service, Tokens],
) -> None:
    client, _svc, tokens = served
    bad = reviewable(categories=["not_a_category"])
    assert _submit(client, tokens, bad, KEY).status_code == 422
    assert _submit(client, tokens, reviewable(), KEY).status_code == 201


@pytest.mark.parametrize("key", ["", "has space", "x" * 129, "naïve", "a\tb", '"', "a,b"])
def test_a_malformed_key_is_refused_naming_the_header(
    served: tuple[TestClient, Service, Tokens], key: str
) -> None:
    client, svc, tokens = served
    headers = tokens.auth("requester") | {"Idempotency-Key": key.encode("utf-8")}
    response = client.post("/api/requests", json=reviewable(), headers=headers)  # type: ignore[arg-type]
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "Idempotency-Key"
    assert svc.list_requests() == []


def test_keys_expire_after_a_day(db_url: str, tmp_path: Path) -> None:
    svc = init_service(db_url, tmp_path)
    try:
        first = svc.submit(reviewable(), idempotency_key=KEY)
        assert svc.submit(reviewable(), idempotency_key=KEY).model_dump() == first.model_dump()
        start = svc.clock()
        svc.clock = lambda: start + timedelta(hours=23, minutes=59)
        assert isinstance(svc.submit(reviewable(), idempotency_key=KEY), Replayed)
        svc.clock = lambda: start + timedelta(hours=24, seconds=1)
        later = svc.submit(reviewable(), idempotency_key=KEY)
        assert not isinstance(later, Replayed) and later.id != first.id
        with pytest.raises(ConflictError):  # the key now stands for the new submission
            svc.submit(reviewable(reference="other"), idempotency_key=KEY)
    finally:
        svc.close()


def test_racing_retries_record_one_request(db_url: str, tmp_path: Path) -> None:
    """Eight threads submit the same document with the same key at once (on PostgreSQL
    truly concurrently): one request is recorded and every thread gets its id."""
    svc = init_service(db_url, tmp_path)
    try:
        barrier = threading.Barrier(8)
        results: list[str] = []

        def one() -> None:
            barrier.wait()
            results.append(svc.submit(reviewable(), idempotency_key=KEY).id)

        threads = [threading.Thread(target=one) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert len(results) == 8 and len(set(results)) == 1
        assert [r.id for r in svc.list_requests()] == results[:1]
    finally:
        svc.close()


def test_the_cli_option(db_url: str, tmp_path: Path) -> None:
    init_service(db_url, tmp_path).close()
    doc = tmp_path / "request.json"
    doc.write_text(json.dumps(reviewable()))
    args = ["submit", "--db", db_url, "--key", str(tmp_path / "log.key"), str(doc)]
    runner = CliRunner()
    first = runner.invoke(main, [*args, "--idempotency-key", KEY])
    again = runner.invoke(main, [*args, "--idempotency-key", KEY])
    assert first.exit_code == again.exit_code == 0, again.output
    assert json.loads(again.stdout) == json.loads(first.stdout)
    bad = runner.invoke(main, [*args, "--idempotency-key", "not a key"])
    assert bad.exit_code == 2
    assert "--idempotency-key" in bad.stderr and "Traceback" not in bad.output
    doc.write_text(json.dumps(reviewable(reference="another")))
    clash = runner.invoke(main, [*args, "--idempotency-key", KEY])
    assert clash.exit_code == 2 and "--idempotency-key" in clash.stderr
    svc = Service.open(db_url, tmp_path / "log.key")
    try:
        assert [r.id for r in svc.list_requests()] == [json.loads(first.stdout)["id"]]
    finally:
        svc.close()


# ----- over a real server: the client drops the connection, then retries --------------------


def _send(base: str, token: str, key: str, doc: dict[str, Any]) -> socket.socket:
    """A whole submission sent over a raw socket whose answer is never read."""
    url = urlsplit(base)
    body = json.dumps(doc).encode()
    head = (
        f"POST /api/requests HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock = socket.create_connection((url.hostname or "", url.port or 80), timeout=60)
    sock.sendall(head.encode() + body)
    return sock


def _drop(sock: socket.socket) -> None:
    """Close abruptly (a reset, as when a network fails), the answer unread."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _send_and_drop(base: str, token: str, key: str, doc: dict[str, Any]) -> None:
    _drop(_send(base, token, key, doc))


def _listed(base: str, token: str) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    r = httpx.get(base + "/api/requests", headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()]


def _server_world(db_url: str, tmp: Path) -> str:
    service = init_service(db_url, tmp)
    token = create_token(service.store, REQUESTER, "requester").secret
    service.close()
    return token


def test_a_retry_after_a_dropped_connection_records_one_request(
    db_url: str, tmp_path: Path
) -> None:
    token = _server_world(db_url, tmp_path)
    key_file, log = tmp_path / "log.key", tmp_path / "server.log"
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": KEY}
    with uvicorn_server(db_url, key_file, log) as base:
        # the server records a submission; its answer is lost with the connection
        sock = _send(base, token, KEY, reviewable())
        deadline = time.monotonic() + START_UP
        while not (ids := _listed(base, token)):
            assert time.monotonic() < deadline, "the submission was never recorded"
            time.sleep(0.1)
        _drop(sock)
        retry = httpx.post(base + "/api/requests", json=reviewable(), headers=headers, timeout=60)
        assert retry.status_code == 200, retry.text
        assert retry.headers[REPLAYED] == "true" and retry.json()["id"] == ids[0]
        assert _listed(base, token) == ids

        # a burst: five dropped sends with another key, and a retry racing them
        other = "burst-" + KEY
        senders = [
            threading.Thread(target=_send_and_drop, args=(base, token, other, reviewable()))
            for _ in range(5)
        ]
        for th in senders:
            th.start()
        raced = httpx.post(
            base + "/api/requests",
            json=reviewable(),
            headers=headers | {"Idempotency-Key": other},
            timeout=60,
        )
        for th in senders:
            th.join()
        assert raced.status_code in (200, 201), raced.text
    # the server has stopped (in-flight submissions finished or rolled back): count them
    svc = Service.open(db_url, key_file)
    try:
        stored = [r.id for r in svc.list_requests()]
    finally:
        svc.close()
    assert sorted(stored) == sorted([ids[0], raced.json()["id"]])  # one per key
    assert "Traceback" not in log.read_text()
