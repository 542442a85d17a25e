"""Submit admits a token seen live moments before; revoked, it still never records.

``POST /api/requests`` answers from the cache of tokens seen live
(:mod:`carewall.api.token_cache`) and the service confirms the token in the recording
transaction. These attack that from outside: a token revoked by another process while the
server holds it, an idempotent retry after revocation, forged and odd bearer strings.
"""

from __future__ import annotations

from typing import Any

import pytest
from api_support import REQUESTER, Tokens, reviewable
from fastapi.testclient import TestClient

from carewall.api.admin import issue_token
from carewall.api.auth import Principal, authenticate, revoke_token
from carewall.api.token_cache import TokenCache
from carewall.service import Service

Served = tuple[TestClient, Service, Tokens]


def _cache(client: TestClient) -> TokenCache:
    cache: TokenCache = client.app.state.token_cache  # type: ignore[attr-defined]
    return cache


def _submit(client: TestClient, secret: str, **headers: str) -> Any:
    # Raw bytes: a hostile client may send a header no well-behaved client would encode.
    auth = {"Authorization": f"Bearer {secret}".encode("latin-1"), **headers}
    return client.post("/api/requests", json=reviewable(), headers=auth)


def _token_id(service: Service, secret: str) -> str:
    principal = authenticate(service.store, secret)
    assert principal is not None
    return principal.token_id


def test_a_token_revoked_by_another_process_records_nothing(served: Served) -> None:
    client, service, tok = served
    assert _submit(client, tok.requester).status_code == 201
    assert _cache(client).get(tok.requester) is not None  # admitted from here on unread
    revoke_token(service.store, _token_id(service, tok.requester))  # this server is not told
    size, count = service.ledger.size(), len(service.list_requests())
    r = _submit(client, tok.requester)
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "unauthorised" and "nothing was recorded" in r.json()["message"]
    assert (service.ledger.size(), len(service.list_requests())) == (size, count)
    # Every other endpoint reads the token each time.
    assert client.get("/api/requests", headers=tok.auth("requester")).status_code == 401


def test_a_revoked_token_gets_no_idempotent_replay(served: Served) -> None:
    client, service, tok = served
    key = {"Idempotency-Key": "0b9e6c1e-retry"}
    first = _submit(client, tok.requester, **key)
    assert first.status_code == 201
    assert _submit(client, tok.requester, **key).status_code == 200  # replayed while live
    revoke_token(service.store, _token_id(service, tok.requester))
    r = _submit(client, tok.requester, **key)
    assert r.status_code == 401 and first.json()["id"] not in r.text


def test_revoking_through_the_api_empties_the_cache(served: Served) -> None:
    client, service, tok = served
    admin = issue_token(service, REQUESTER, "admin").secret
    assert _submit(client, tok.requester).status_code == 201
    assert len(_cache(client)) == 1
    token_id = _token_id(service, tok.requester)
    r = client.delete(f"/api/admin/tokens/{token_id}", headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 204
    assert len(_cache(client)) == 0
    assert _submit(client, tok.requester).status_code == 401


@pytest.mark.parametrize(
    "secret",
    ["cw_not-a-real-token", "cw_", "", " ", "CW_" + "a" * 43, "cw_" + "a" * 300, "cw_\u00e9x"],
)
def test_forged_tokens_are_refused_and_never_cached(served: Served, secret: str) -> None:
    client, service, _ = served
    size = service.ledger.size()
    for _ in range(2):
        r = _submit(client, secret)
        assert r.status_code == 401 and r.json()["error"] == "unauthorised"
    assert len(_cache(client)) == 0 and service.ledger.size() == size


def test_a_cached_token_keeps_its_role_and_organisation(served: Served) -> None:
    client, _, tok = served
    # A holder-side token is refused the submit, cached or not; another requester may
    # submit only in its own name.
    for _ in range(2):
        assert _submit(client, tok.release).status_code == 403
        assert _submit(client, tok.other_requester).status_code == 403


def _principal(n: int) -> Principal:
    return Principal(token_id=f"{n:016x}", organisation=REQUESTER, role="requester", reviewer=None)


def test_the_cache_forgets_after_its_ttl_and_holds_at_most_its_size() -> None:
    now = [0.0]
    cache = TokenCache(ttl=10.0, size=3, clock=lambda: now[0])
    cache.put("cw_a", _principal(1))
    now[0] = 9.9
    assert cache.get("cw_a") == _principal(1)
    now[0] = 10.0
    assert cache.get("cw_a") is None and len(cache) == 0
    for n in range(5):
        cache.put(f"cw_{n}", _principal(n))
    assert len(cache) == 3
    assert [cache.get(f"cw_{n}") for n in range(5)] == [None, None] + [
        _principal(n) for n in range(2, 5)
    ]
    assert cache.get("not-a-token") is None and cache.get("cw_" + "x" * 300) is None
    cache.clear()
    assert len(cache) == 0
