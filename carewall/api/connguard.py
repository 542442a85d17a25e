"""The HTTP/1.1 protocol ``carewall serve`` runs: uvicorn's h11 protocol with two guards.

uvicorn waits for a request head for ever (its keep-alive timer is cancelled by the first
byte), so clients that send a head slowly, or nothing at all, hold a connection and a file
handle each until the process runs out of both. And its ``limit_concurrency`` answers 503
only once a head is complete, so it cannot help against them. Here:

* **Header deadline.** A connection must complete each request head within
  ``header_timeout`` seconds of opening (or of its previous response); otherwise it is
  closed, with a ``408`` if part of a head had arrived.
* **Connection cap.** A connection opened while ``max_connections`` are already open is
  answered at once with a ``503`` and ``Retry-After`` and closed: it never reaches the
  application. Its request is read and discarded until the client closes (which it does on
  reading the 503) or ``LINGER`` seconds pass, so the close is clean rather than a reset. At
  most ``linger_slots`` connections linger at once. A new one takes the slot of the one that
  has lingered longest of, in turn: those that sent part of a request head (slow clients
  themselves), those that sent nothing yet, and those that sent a whole head (a client that
  read its 503 closes within a round trip, so one still there is most likely hostile too).

Body-read deadlines are in :class:`carewall.api.middleware.BodyTimeoutMiddleware`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

__all__ = ["ConnectionGuard", "GuardedH11Protocol", "guarded_protocol", "raw_response"]

_log = logging.getLogger("carewall.server")

LINGER = 5.0  # seconds an answered over-cap connection is read (and discarded) before close
_REASONS = {408: "Request Timeout", 503: "Service Unavailable"}


def raw_response(status: int, body: dict[str, str], retry_after: int | None = None) -> bytes:
    """A complete HTTP/1.1 response that closes the connection, in the one error shape."""
    data = json.dumps(body).encode()
    head = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        "Connection: close",
        "Cache-Control: no-store",
        "X-Content-Type-Options: nosniff",
    ]
    if retry_after is not None:
        head.append(f"Retry-After: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + data


@dataclass
class ConnectionGuard:
    """The guards' settings, and the over-cap connections still lingering (shared)."""

    header_timeout: float
    max_connections: int
    linger_slots: int
    retry_after: int = 5
    lingering: dict[GuardedH11Protocol, asyncio.Transport] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.too_busy = raw_response(
            503,
            {
                "error": "unavailable",
                "message": "the server is at its connection limit",
                "fix": f"retry after {self.retry_after} seconds",
            },
            retry_after=self.retry_after,
        )
        self.too_slow = raw_response(
            408,
            {
                "error": "timeout",
                "message": f"the request head did not arrive within {self.header_timeout:g} s",
                "fix": "send the whole request head at once",
            },
        )


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and an accept-time connection cap."""

    guard: ClassVar[ConnectionGuard]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_cycle: object | None = None  # the request cycle when the timer was armed
        self._head_bytes = 0
        self._refused = False
        self._sent = 0  # (refused) 0: nothing yet, 1: part of a request head, 2: a whole head
        self._tail = b""  # (refused) the last bytes it sent, to find a head's end across reads
        self._linger_timer: asyncio.TimerHandle | None = None

    # ----- the connection cap ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.guard.max_connections:
            self._refuse(transport)
            return
        super().connection_made(transport)
        self._arm_head_timer()

    def _refuse(self, transport: asyncio.Transport) -> None:
        self._refused = True
        self.transport = transport
        self.flow = FlowControl(transport)  # (uvicorn's write callbacks use it)
        guard = self.guard
        _log.warning(
            "at the connection limit (%d open): a new connection was answered 503",
            guard.max_connections,
        )
        transport.write(guard.too_busy)
        try:
            if not transport.can_write_eof():
                raise OSError("cannot half-close")
            transport.write_eof()
        except OSError:  # (already reset by the client, say): nothing more to do
            transport.close()
            return
        while guard.lingering and len(guard.lingering) >= guard.linger_slots:
            # oldest first (dicts keep their order), the slow ones before the others
            evict = min(guard.lingering, key=lambda p: (1, 0, 2)[p._sent])
            guard.lingering.pop(evict).close()
        guard.lingering[self] = transport
        self._linger_timer = self.loop.call_later(LINGER, transport.close)

    # ----- the header deadline --------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_cycle = self.cycle
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.guard.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes:
            _log.warning(
                "closed a connection: its request head was not complete within %g s",
                self.guard.header_timeout,
            )
            self.transport.write(self.guard.too_slow)
        self.transport.close()

    # ----- uvicorn's callbacks ----------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refused:  # read and dropped: the 503 is already on its way
            if self._sent < 2:
                self._sent = 2 if b"\r\n\r\n" in self._tail + data else 1
                self._tail = data[-3:]
            return
        if self._head_timer is not None:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._head_timer is not None and self.cycle is not self._head_cycle:
            self._cancel_head_timer()  # a request head was read: the application has it

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self._arm_head_timer()  # (not when a pipelined request is already under way)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            self.guard.lingering.pop(self, None)
            if self._linger_timer is not None:
                self._linger_timer.cancel()
                self._linger_timer = None
            return
        self._cancel_head_timer()
        super().connection_lost(exc)


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedH11Protocol]:
    """A protocol class for uvicorn's ``Config(http=…)`` bound to ``guard``'s settings."""
    return type("CarewallHTTPProtocol", (GuardedH11Protocol,), {"guard": guard})
