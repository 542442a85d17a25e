"""One JSON error shape for every HTTP response that is not a success.

Every error body is ``{"error": code, "message": …, "field"?: …, "fix"?: …}``, the shape of
:meth:`carewall.errors.CarewallError.diagnostics`. Validation errors name the offending field;
anything unexpected becomes a bare 500 that never shows a stack trace or internal detail.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from carewall.errors import FIELD_PART_MAX, CarewallError

__all__ = ["FIELD_PART_MAX", "error_body", "field_part", "install_error_handlers"]

_log = logging.getLogger("carewall.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorised",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def error_body(
    code: str, message: str, *, field: str | None = None, fix: str | None = None
) -> dict[str, Any]:
    """The error shape, for callers that build an error without raising one."""
    out: dict[str, Any] = {"error": code, "message": message}
    if field is not None:
        out["field"] = field
    if fix is not None:
        out["fix"] = fix
    return out


# A reported field's name is cut to FIELD_PART_MAX characters per part (carewall.errors),
# and a whole field to this many, however many parts (dots in a key) it has.
_FIELD_MAX = 200
_LONG_PART = re.compile(rf"[^.\[\]]{{{FIELD_PART_MAX + 1},}}")

# FastAPI's own answer to a body it could not read (not JSON: a form, say).
_UNREADABLE_BODY = "There was an error parsing the body"


def field_part(part: object) -> str:
    """One part of a reported field's path, cut to :data:`FIELD_PART_MAX` characters."""
    return str(part)[:FIELD_PART_MAX]


def _cut_field(field: str) -> str:
    """A field path built elsewhere (``a.b[0].c``), each part cut as :func:`field_part` does."""
    return _LONG_PART.sub(lambda m: m.group()[:FIELD_PART_MAX], field)[:_FIELD_MAX]


def _field_of(loc: Sequence[Any]) -> str:
    # FastAPI locations start with where the value came from ("query", "body", "path").
    parts = [field_part(p) for p in loc]
    if parts and parts[0] in ("query", "path", "body", "header", "cookie"):
        source, parts = parts[0], parts[1:]
        if not parts:  # the whole body (or query…) is at fault: an empty body, an array
            return source
    return ".".join(parts) or "request"


def _page(request: Request, status: int, body: dict[str, Any]) -> Response | None:
    """The web package's HTML error page, for a browser asking for a page (not the API)."""
    render = getattr(request.app.state, "page_error", None)
    if render is None or "text/html" not in request.headers.get("accept", ""):
        return None
    path = request.url.path
    if path.startswith(("/api/", "/openapi.json", "/statistics.")):
        return None
    if path.startswith("/log/") and path != "/log/":
        return None
    page: Response = render(request, status, body)
    return page


async def _carewall_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CarewallError)
    body = exc.diagnostics()
    if isinstance(body.get("field"), str):
        # The service names an unknown key of a request document whole (policy/document.py).
        body["field"] = _cut_field(body["field"])
    page = _page(request, exc.status, body)
    if page is not None:
        return page
    headers = {"Retry-After": "5"} if exc.status == 503 else None
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    field = _field_of(first.get("loc", ()))
    kind = str(first.get("type", ""))
    fix = "correct this field and retry"
    # The input value is deliberately left out: it may be personal data.
    if kind == "json_invalid":  # FastAPI's own JSON reader (api/bodies.py reads first)
        field, message, fix = "body", "is not valid JSON", "send one UTF-8 JSON object"
    elif kind == "missing":
        message = "this parameter is required"
    else:
        message = str(first.get("msg", "invalid value"))
    body = error_body("invalid_input", message, field=field, fix=fix)
    if len(errors) > 1:
        body["fields"] = [_field_of(e.get("loc", ())) for e in errors]
    return JSONResponse(body, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNREADABLE_BODY:
        if isinstance(exc.__cause__, ClientDisconnect):  # FastAPI's wrapping of one
            return await _disconnected(request, exc.__cause__)
        # A body FastAPI could not read (a JSON body never gets here: api/bodies.py reads it).
        unreadable = error_body(
            "invalid_input",
            "could not be read",
            field="body",
            fix="send one UTF-8 JSON object, or the form as the page sends it",
        )
        return _page(request, 422, unreadable) or JSONResponse(unreadable, status_code=422)
    code = _HTTP_CODES.get(exc.status_code, "error" if exc.status_code < 500 else "internal")
    detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    page = _page(request, exc.status_code, error_body(code, detail))
    if page is not None:
        return page
    return JSONResponse(error_body(code, detail), status_code=exc.status_code, headers=exc.headers)


async def _disconnected(request: Request, exc: Exception) -> Response:
    # A client that goes away before its request is read is not a server fault: one line,
    # naming the route only (no body, no query string, no address).
    assert isinstance(exc, ClientDisconnect)
    _log.info(
        "client disconnected before its request was read: %s %s", request.method, _route(request)
    )
    return Response(status_code=400)  # never delivered: there is no one to deliver it to


def _route(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "(no route)"


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the server log only; the client learns nothing internal.
    _log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
    return JSONResponse(
        error_body(
            "internal", "internal error", fix="try again; if it persists, tell the operator"
        ),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Render every error raised inside ``app`` in the one JSON shape."""
    app.add_exception_handler(CarewallError, _carewall_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _disconnected)
    app.add_exception_handler(Exception, _unexpected)
