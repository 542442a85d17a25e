"""Running the API under uvicorn so that hostile clients cannot take it down.

:func:`serve_app` is what ``carewall serve`` (and ``carewall demo``) run. Over a plain
``uvicorn.run`` it adds:

* the process's soft open-file limit raised to its hard limit, and a connection cap kept
  below it with room to spare (:func:`plan_connections`), so accepting never runs out of
  file handles: the database, the log and the key keep theirs;
* a header-read deadline and an accept-time cap that answers ``503`` with ``Retry-After``
  (:mod:`carewall.api.connguard`), and a body-read deadline (``408``,
  :class:`carewall.api.middleware.BodyTimeoutMiddleware`);
* a log whose volume is bounded (:mod:`carewall.api.logbound`), and an event-loop error
  handler that reports running out of file handles in one line, not a traceback per try;
* forwarded headers believed only from the proxies named (``forwarded_allow_ips``).

The default loop is plain asyncio and the protocol h11, whatever else is installed: the
guards are written (and tested) for those.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp

from carewall.api.connguard import ConnectionGuard, guarded_protocol
from carewall.api.logbound import log_config
from carewall.api.middleware import BodyTimeoutMiddleware
from carewall.errors import CarewallError, InputError

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "RESERVED_FDS",
    "ConnectionPlan",
    "ServeSettings",
    "plan_connections",
    "raise_open_file_limit",
    "serve_app",
]

_log = logging.getLogger("carewall.server")

DEFAULT_MAX_CONNECTIONS = 1000
# File handles kept back from connections for the process itself: two database pools
# (SQLite holds three files per connection), the log key, stdio, the event loop.
RESERVED_FDS = 128
MAX_HEAD_BYTES = 16 * 1024  # a request head (request line and headers) larger is a 400
KEEP_ALIVE = 5  # seconds an idle keep-alive connection is kept
GRACEFUL_SHUTDOWN = 30  # seconds requests in progress get to finish at shutdown


@dataclass(frozen=True)
class ServeSettings:
    """The settings ``carewall serve`` takes for clients and proxies (see its --help)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int | None = None  # None: DEFAULT_MAX_CONNECTIONS, or fewer if need be
    proxy_headers: bool = True
    forwarded_allow_ips: str = "127.0.0.1"


@dataclass(frozen=True)
class ConnectionPlan:
    """How the open-file limit is shared out."""

    open_files: int  # the soft limit
    max_connections: int  # connections served at once
    linger_slots: int  # over-cap connections being answered 503 at once
    backlog: int  # the listen queue, and the most connections accepted in one go


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard limit (where there is one); the new soft."""
    try:
        import resource
    except ImportError:  # not a POSIX system: nothing to raise
        return 1 << 16
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinite = resource.RLIM_INFINITY
    if soft == infinite:
        return 1 << 20
    # No hard limit (macOS says so, yet refuses much above 10240): ask for a generous one.
    target = max(soft, 1 << 16) if hard == infinite else hard
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def plan_connections(open_files: int, requested: int | None) -> ConnectionPlan:
    """Share ``open_files`` out: reserved, listen batch, lingering 503s, and connections.

    asyncio accepts up to ``backlog`` connections in one go before any of them is looked
    at, and each 503 being answered holds its handle briefly; both come out of the budget,
    so that connections at the cap plus those never reach the limit. There are twice as
    many lingering 503s as connections accepted in one go, so one such batch over the cap
    never pushes out its own members before their requests are read.
    """
    available = open_files - RESERVED_FDS
    backlog = max(8, min(512, available // 8))
    linger = max(16, min(1024, available // 4))
    most = available - backlog - linger
    if most < 16:
        raise CarewallError(
            f"the open-file limit ({open_files}) is too low to serve HTTP",
            fix="raise it (ulimit -n, or the service's LimitNOFILE) to at least 256",
        )
    if requested is None:
        return ConnectionPlan(open_files, min(DEFAULT_MAX_CONNECTIONS, most), linger, backlog)
    if requested > most:
        raise InputError(
            f"is more connections than the open-file limit ({open_files}) leaves room for",
            field="--max-connections",
            fix=f"give at most {most}, or raise the hard open-file limit (ulimit -Hn, or "
            "the service's LimitNOFILE)",
        )
    return ConnectionPlan(open_files, requested, linger, backlog)


def _loop_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    exc = context.get("exception")
    if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
        # asyncio says this once per connection it fails to accept, with a traceback each.
        _log.error("out of file handles: new connections wait until some close")
        return
    loop.default_exception_handler(context)


def serve_app(app: ASGIApp, host: str, port: int, settings: ServeSettings) -> None:
    """Serve ``app`` on ``host:port`` until interrupted, with every guard in place."""
    import uvicorn
    from uvicorn._compat import asyncio_run

    plan = plan_connections(raise_open_file_limit(), settings.max_connections)
    guard = ConnectionGuard(
        header_timeout=settings.header_timeout,
        max_connections=plan.max_connections,
        linger_slots=plan.linger_slots,
    )
    config = uvicorn.Config(
        BodyTimeoutMiddleware(app, settings.body_timeout),
        host=host,
        port=port,
        loop="asyncio",
        http=guarded_protocol(guard),
        ws="none",
        log_config=log_config(),
        log_level="warning",
        access_log=False,
        proxy_headers=settings.proxy_headers,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        backlog=plan.backlog,
        timeout_keep_alive=KEEP_ALIVE,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
    )
    server = uvicorn.Server(config)
    _log.info(
        "up to %d connections at once (open-file limit %d); request heads within %g s, "
        "bodies within %g s",
        plan.max_connections,
        plan.open_files,
        settings.header_timeout,
        settings.body_timeout,
    )

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(_loop_errors)
        await server.serve()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio_run(main(), loop_factory=config.get_loop_factory())
    if not server.started:
        raise CarewallError(
            "the HTTP server did not start (the log above says why)",
            fix="correct what it names and start it again",
        )
