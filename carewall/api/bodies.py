"""JSON request bodies, read strictly once for the whole app, before any route sees them.

FastAPI reads a JSON body with ``json.loads``: a key given twice keeps its last value (so
``{"release": false, "release": true}`` releases, while anything reading the first key sees
a refusal), and a body it cannot read at all (nested too deeply, an integer too long to
convert, bytes that are not UTF-8) gets a bare 400 that names nothing. :class:`JSONBodyMiddleware`
reads every JSON body first (the ``Content-Type`` FastAPI would parse as JSON) and refuses
those with 422 in the one error shape, naming the key or ``body`` and the fix. A body that
reads cleanly goes on to the app unchanged, so each route's own validation is untouched.

The request document (``POST /api/requests``) is read by the document's own decoder
(:func:`carewall.policy.document.parse_document`, with the same rules and its own wording),
so it is passed through here unread.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Collection
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carewall.api.errors import field_part
from carewall.errors import InputError

__all__ = ["BODY_FIX", "JSONBodyMiddleware", "decode_body"]

BODY_FIX = "send one UTF-8 JSON object"


def _each_key_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            # The key (cut short, as every reported field is) is the field: it is the
            # caller's own spelling of a field name, never a value.
            raise InputError(
                "appears twice in one JSON object",
                field=field_part(key) or '""',
                fix="give each key once",
            )
        out[key] = value
    return out


def decode_body(data: bytes) -> Any:
    """The JSON value of a request body; InputError (422) for anything else or a repeated key.

    Only UTF-8 is JSON on the wire (RFC 8259 §8.1). No message quotes the body.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(
            f"is not valid UTF-8 (bad byte at offset {e.start})", field="body", fix=BODY_FIX
        ) from e
    try:
        return json.loads(text, object_pairs_hook=_each_key_once)
    except json.JSONDecodeError as e:
        raise InputError(
            f"is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})",
            field="body",
            fix=BODY_FIX,
        ) from e
    except RecursionError as e:
        raise InputError(
            "is nested too deeply", field="body", fix=BODY_FIX + ", nested a few levels"
        ) from e
    except ValueError as e:  # an integer literal past Python's digit limit
        raise InputError(
            "has a number too long to read",
            field="body",
            fix=BODY_FIX + "; a number has at most 4300 digits, ids are strings",
        ) from e


def _is_json(scope: Scope) -> bool:
    """Whether FastAPI would read this request's body as JSON (its own test, on the header)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            message = email.message.Message()
            message["content-type"] = value.decode("latin-1")
            subtype = message.get_content_subtype()
            return message.get_content_maintype() == "application" and (
                subtype == "json" or subtype.endswith("+json")
            )
    return False


class JSONBodyMiddleware:
    """422 for a JSON body that is not one well-formed JSON value with each key once.

    ``own_parsers`` lists the ``(method, path)`` of routes that read their body themselves.
    Put it inside the body limits, so they count (and cut off) what it reads.
    """

    def __init__(
        self, app: ASGIApp, own_parsers: Collection[tuple[str, str]] = frozenset()
    ) -> None:
        self.app = app
        self.own_parsers = frozenset(own_parsers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or (scope.get("method", ""), scope.get("path", "")) in self.own_parsers
            or not _is_json(scope)
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        ended: Message | None = None  # a disconnect before the body was all in
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    ended = message
                    break
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except HTTPException as e:
            # A body limit or deadline: let the app meet it where it always has, reading
            # its body, so the error handlers answer it as before (413, 408).
            await self.app(scope, _raising(e), send)
            return
        body = b"".join(chunks)
        if ended is None and body:
            try:
                decode_body(body)
            except InputError as e:
                await JSONResponse(e.diagnostics(), status_code=e.status)(scope, receive, send)
                return
        await self.app(scope, _replaying(body, ended, receive), send)


def _raising(error: HTTPException) -> Receive:
    async def receive() -> Message:
        raise error

    return receive


def _replaying(body: bytes, ended: Message | None, receive: Receive) -> Receive:
    """``receive`` for the app: the body already read, as one message, then the real one."""
    pending: list[Message] = [ended or {"type": "http.request", "body": body, "more_body": False}]
    if ended is not None and body:
        pending.insert(0, {"type": "http.request", "body": body, "more_body": True})

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
