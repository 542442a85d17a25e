"""Limits on guessing a subject's access code: failures counted per client, and per request
id from each client.

``POST /api/subject/view`` and ``/api/subject/appeal`` (and the ``/my-data`` pages) take a
request id and an access code and need no token, so they are where someone would guess
codes. After ``per_request`` failures for one request id from one client address, or
``per_client`` failures from one client address whatever the ids, within ``window`` seconds,
further attempts from that client answer 429 with ``Retry-After`` until the oldest of those
failures leaves the window; the code is not even checked meanwhile. A success resets
nothing: it neither clears its own client's failures nor anyone else's.

One client's failures never block another client. Request ids are public (the public log
names them), so a limit per request id alone would let anyone lock the real subject out of
their page and their appeal, for as long as they kept sending wrong codes. Codes are 128-bit,
so such a limit would add almost nothing against guessing spread over many addresses.

In memory, per process, and thread-safe (FastAPI runs these endpoints in a thread pool).
Memory is bounded: each key keeps at most its limit's worth of failure times, keys whose
newest failure has left the window are dropped, and past ``max_keys`` keys the least
recently failing ones are dropped first. Behind a reverse proxy the client address is the
proxy's unless uvicorn is told to trust it (``--forwarded-allow-ips``); a forwarded header
from anyone else is never believed.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from fastapi import FastAPI

from carewall.errors import RateLimitError

__all__ = ["DEFAULT_PER_CLIENT", "DEFAULT_PER_REQUEST", "FailureLimiter", "Limit", "limiter_of"]

WINDOW_SECONDS = 15 * 60
PER_REQUEST = 5
PER_CLIENT = 20
MAX_KEYS = 65536

_K = TypeVar("_K", bound=Hashable)


@dataclass(frozen=True)
class Limit:
    """At most ``failures`` failures per key within ``window`` seconds."""

    failures: int
    window: float


DEFAULT_PER_REQUEST = Limit(PER_REQUEST, WINDOW_SECONDS)
DEFAULT_PER_CLIENT = Limit(PER_CLIENT, WINDOW_SECONDS)


class _Counter(Generic[_K]):
    """Recent failure times per key, oldest key (by its newest failure) first."""

    def __init__(self, limit: Limit, max_keys: int) -> None:
        if limit.failures < 1 or limit.window <= 0:
            raise ValueError("a limit needs at least one failure and a positive window")
        self.limit = limit
        self.max_keys = max_keys
        self._keys: OrderedDict[_K, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def _evict(self, now: float) -> None:
        # Keys are ordered by their newest failure, so the expired ones are at the front.
        while self._keys:
            key, times = next(iter(self._keys.items()))
            if times[-1] > now - self.limit.window:
                break
            del self._keys[key]

    def wait(self, key: _K, now: float) -> float:
        """Seconds until ``key`` may try again (0 when it may now)."""
        self._evict(now)
        times = self._keys.get(key)
        if times is None or len(times) < self.limit.failures:
            return 0.0
        # The deque holds the last `failures` times: the key is blocked while the oldest of
        # them is still inside the window.
        return max(0.0, times[0] + self.limit.window - now)

    def fail(self, key: _K, now: float) -> None:
        times = self._keys.pop(key, None)
        if times is None:
            times = deque(maxlen=self.limit.failures)
        times.append(now)
        self._keys[key] = times  # to the back: the most recent failure
        self._evict(now)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)


class FailureLimiter:
    """Counts failed code checks per client, and per request id from each client; refuses a
    client while it is over either limit.

    ``per_request`` limits one client's failures for one request id (the counter is keyed by
    the pair, never by the request id alone, so no client can block another); ``per_client``
    limits one client's failures over all request ids. ``clock`` returns seconds (monotonic
    by default); tests pass their own so none sleeps.
    """

    def __init__(
        self,
        *,
        per_request: Limit = DEFAULT_PER_REQUEST,
        per_client: Limit = DEFAULT_PER_CLIENT,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._requests: _Counter[tuple[str, str]] = _Counter(per_request, max_keys)
        self._clients: _Counter[str] = _Counter(per_client, max_keys)

    def check(self, request_id: str, client: str) -> None:
        """Raise :class:`RateLimitError` if ``client`` is blocked, for ``request_id`` or at all.

        Only ``client``'s own failures count: another client's, for the same request id or
        any other, never block it.
        """
        with self._lock:
            now = self.clock()
            by_request = self._requests.wait((request_id, client), now)
            by_client = self._clients.wait(client, now)
        wait = max(by_request, by_client)
        if wait > 0:
            # Which limit was hit is said, never the request id or the address.
            what = "this request id from this client" if by_request >= by_client else "this client"
            raise RateLimitError(
                f"too many wrong access codes for {what}; wait before trying again",
                field="code",
                fix="check the request id and code in your notice, and try again after "
                "the number of seconds in the Retry-After header",
                retry_after=math.ceil(wait),
            )

    def failure(self, request_id: str, client: str) -> None:
        """Record one failed code check by ``client`` for ``request_id``."""
        with self._lock:
            now = self.clock()
            self._requests.fail((request_id, client), now)
            self._clients.fail(client, now)

    def sizes(self) -> tuple[int, int]:
        """How many (request id, client) pairs and clients are tracked (for tests and
        monitoring)."""
        with self._lock:
            return len(self._requests), len(self._clients)


_create = threading.Lock()


def limiter_of(app: FastAPI) -> FailureLimiter:
    """The app's limiter (``app.state.subject_limiter``), created on first use.

    Set ``app.state.subject_limiter`` before serving to use other limits or a test clock.
    """
    limiter = getattr(app.state, "subject_limiter", None)
    if isinstance(limiter, FailureLimiter):
        return limiter
    with _create:
        limiter = getattr(app.state, "subject_limiter", None)
        if not isinstance(limiter, FailureLimiter):
            limiter = FailureLimiter()
            app.state.subject_limiter = limiter
        return limiter
