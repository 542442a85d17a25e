"""Limits on guessing a subject's access code: failures counted per request id and per client.

``POST /api/subject/view`` and ``/api/subject/appeal`` take a request id and an access code
and need no token, so they are where someone would guess codes. After ``per_request``
failures for one request id, or ``per_client`` failures from one client address, within
``window`` seconds, further attempts answer 429 with ``Retry-After`` until the oldest of
those failures leaves the window; the code is not even checked meanwhile. A success resets
nothing: it neither clears its own client's failures nor anyone else's.

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
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI

from carewall.errors import RateLimitError

__all__ = ["DEFAULT_PER_CLIENT", "DEFAULT_PER_REQUEST", "FailureLimiter", "Limit", "limiter_of"]

WINDOW_SECONDS = 15 * 60
PER_REQUEST = 5
PER_CLIENT = 20
MAX_KEYS = 65536


@dataclass(frozen=True)
class Limit:
    """At most ``failures`` failures per key within ``window`` seconds."""

    failures: int
    window: float


DEFAULT_PER_REQUEST = Limit(PER_REQUEST, WINDOW_SECONDS)
DEFAULT_PER_CLIENT = Limit(PER_CLIENT, WINDOW_SECONDS)


class _Counter:
    """Recent failure times per key, oldest key (by its newest failure) first."""

    def __init__(self, limit: Limit, max_keys: int) -> None:
        if limit.failures < 1 or limit.window <= 0:
            raise ValueError("a limit needs at least one failure and a positive window")
        self.limit = limit
        self.max_keys = max_keys
        self._keys: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def _evict(self, now: float) -> None:
        # Keys are ordered by their newest failure, so the expired ones are at the front.
        while self._keys:
            key, times = next(iter(self._keys.items()))
            if times[-1] > now - self.limit.window:
                break
            del self._keys[key]

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0 when it may now)."""
        self._evict(now)
        times = self._keys.get(key)
        if times is None or len(times) < self.limit.failures:
            return 0.0
        # The deque holds the last `failures` times: the key is blocked while the oldest of
        # them is still inside the window.
        return max(0.0, times[0] + self.limit.window - now)

    def fail(self, key: str, now: float) -> None:
        times = self._keys.pop(key, None)
        if times is None:
            times = deque(maxlen=self.limit.failures)
        times.append(now)
        self._keys[key] = times  # to the back: the most recent failure
        self._evict(now)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)


class FailureLimiter:
    """Counts failed code checks per request id and per client; refuses while over a limit.

    ``clock`` returns seconds (monotonic by default); tests pass their own so none sleeps.
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
        self._requests = _Counter(per_request, max_keys)
        self._clients = _Counter(per_client, max_keys)

    def check(self, request_id: str, client: str) -> None:
        """Raise :class:`RateLimitError` if either the request id or the client is blocked."""
        with self._lock:
            now = self.clock()
            by_request = self._requests.wait(request_id, now)
            by_client = self._clients.wait(client, now)
        wait = max(by_request, by_client)
        if wait > 0:
            # Which limit was hit is said, never the request id or the address.
            what = "this request id" if by_request >= by_client else "this client"
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
            self._requests.fail(request_id, now)
            self._clients.fail(client, now)

    def sizes(self) -> tuple[int, int]:
        """How many request ids and clients are tracked (for tests and monitoring)."""
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
