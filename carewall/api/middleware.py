"""ASGI middleware: a request body limit and security headers on every response.

The body limit refuses a declared ``Content-Length`` over the limit before reading anything,
and counts the bytes of a chunked body as they arrive, so an unbounded body is never held in
memory. Both answer 413 in the one error shape.

The body timeout (``carewall serve`` puts it outermost) gives a request's whole body
``timeout`` seconds from the moment its head was read: a body that stalls or trickles past
that answers 408 and the connection is closed, so a slow client cannot hold a connection
for ever once its head is in. (The head has its own deadline: :mod:`carewall.api.connguard`.)
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimitMiddleware", "BodyTimeoutMiddleware", "SecurityHeadersMiddleware"]

_log = logging.getLogger("carewall.server")

_TOO_LARGE = json.dumps(
    {
        "error": "too_large",
        "message": "the request body is over the size limit",
        "fix": "send a smaller body",
    }
).encode()


class _BodyTooLarge(HTTPException):
    # An HTTPException, so FastAPI's body parser re-raises it instead of calling it a 400.
    def __init__(self) -> None:
        super().__init__(413, "the request body is over the size limit")


class BodyLimitMiddleware:
    """413 for a body over ``max_body`` bytes, or over ``larger[(method, path)]`` for the
    few routes that take more (a request document about 100,000 people is ~7 MB)."""

    def __init__(
        self, app: ASGIApp, max_body: int, larger: Mapping[tuple[str, str], int] | None = None
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get((scope.get("method", ""), scope.get("path", "")), self.max_body)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    await _send_413(send)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_413(send)


class _BodyTimedOut(HTTPException):
    # An HTTPException too, so the error handlers answer it (408, the one error shape).
    def __init__(self, timeout: float) -> None:
        super().__init__(
            408,
            f"the request body did not arrive within {timeout:g} s",
            headers={"Connection": "close"},
        )


class BodyTimeoutMiddleware:
    """Answer 408 and close when a request's body is not all in ``timeout`` s after its head."""

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.timeout
        done = False
        started = False

        async def timed_receive() -> Message:
            nonlocal done
            if done:  # the body is in: later calls wait for a disconnect, untimed
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                _log.warning("answered 408: a request body was not in within %g s", self.timeout)
                raise _BodyTimedOut(self.timeout) from None
            done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except _BodyTimedOut as e:
            if not started:  # an application that did not answer it: answer it here
                await _send_error(send, 408, _timed_out_body(e))


def _timed_out_body(e: _BodyTimedOut) -> bytes:
    return json.dumps(
        {"error": "timeout", "message": e.detail, "fix": "send the whole body at once"}
    ).encode()


async def _send_413(send: Send) -> None:
    await _send_error(send, 413, _TOO_LARGE)


async def _send_error(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# API responses are JSON or plain text: nothing may load, frame or run anything. A page
# that needs more (the web UI) sets its own Content-Security-Policy, which is kept.
_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        public_log = str(scope.get("path", "")).startswith("/log/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", _CSP.decode())
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("X-Frame-Options", "DENY")
                if public_log:
                    # Contract §6: a monitor in a browser may follow the log from anywhere.
                    headers.setdefault("Access-Control-Allow-Origin", "*")
                    headers.setdefault("Cross-Origin-Resource-Policy", "cross-origin")
                else:
                    headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
                if https:
                    headers.setdefault("Strict-Transport-Security", "max-age=63072000")
                # Anything but the public log may carry personal data: never cache it.
                if not public_log:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)
