"""Tokens seen live moments ago, for the one endpoint that confirms its token at commit.

Every API call reads its token from the database (:func:`carewall.api.auth.require`), so a
revocation by any process counts at once. For a submit that read is most of the cost of
the call beyond recording it (a worker thread, a pooled connection, two round trips on
PostgreSQL), and it is not needed: the submit reads its token again in the transaction that
records it, under the ledger's lock, in the same round trip as the ledger's head
(:mod:`carewall.service.token_check`), and records nothing if it is no longer live. So
:func:`require_live_at_commit` answers from :class:`TokenCache` when it can and reads the
database only for a token not seen live in the last :data:`TTL` seconds.

What a cached token can still get after it is revoked, for at most ``TTL`` seconds and
only from a submit: the refusals that come before recording (a malformed document, a
requester that is not its organisation), which say nothing it did not send. A revoked
token never has a request recorded, nor an idempotent retry's first result read back.

Only live tokens are cached, by their SHA-256 (never the secret), at most :data:`SIZE` of
them; unknown and revoked ones are read every time. A revocation made through this
process's API also empties the cache, for tidiness: the check at commit is what counts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from carewall.api.auth import (
    BEARER,
    Principal,
    admit,
    authenticate,
    no_token,
    token_digest,
    unknown_token,
    well_formed,
)

__all__ = ["SIZE", "TTL", "TokenCache", "require_live_at_commit"]

TTL = 10.0  # seconds a token seen live is taken as live without a read
SIZE = 1024  # tokens held at most


class TokenCache:
    """Principals of tokens seen live, each for ``ttl`` seconds, at most ``size``."""

    def __init__(
        self, ttl: float = TTL, size: int = SIZE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.size = size
        self._clock = clock
        self._held: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()  # the event loop reads, a worker thread may clear

    def __len__(self) -> int:
        return len(self._held)

    def get(self, secret: str) -> Principal | None:
        """The principal ``secret`` was seen live as within ``ttl`` seconds, else None."""
        if not well_formed(secret):
            return None
        digest = token_digest(secret)
        with self._lock:
            held = self._held.get(digest)
            if held is None:
                return None
            if self._clock() - held[0] >= self.ttl:
                del self._held[digest]
                return None
            return held[1]

    def put(self, secret: str, principal: Principal) -> None:
        """Remember ``secret`` as live now; the oldest is dropped when full."""
        held = self._held
        digest = token_digest(secret)
        with self._lock:
            held.pop(digest, None)
            while len(held) >= self.size:
                del held[next(iter(held))]  # the dict keeps insertion order: oldest first
            held[digest] = (self._clock(), principal)

    def clear(self) -> None:
        with self._lock:
            self._held.clear()


def require_live_at_commit(*roles: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting tokens with one of ``roles``, from :class:`TokenCache` when it
    holds them: only for an endpoint that passes the principal's ``token_id`` to the
    service, which confirms it live in the recording transaction."""
    allowed = frozenset(roles)

    async def dependency(request: Request, creds: BEARER) -> Principal:
        if creds is None:
            raise no_token()
        cache: TokenCache = request.app.state.token_cache
        principal = cache.get(creds.credentials)
        if principal is None:
            store = request.app.state.store
            principal = await run_in_threadpool(authenticate, store, creds.credentials)
            if principal is None:
                raise unknown_token()
            cache.put(creds.credentials, principal)
        return admit(principal, allowed)

    return dependency
