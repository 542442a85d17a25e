"""The subject's side: what was released about them, and their appeal.

The request id and access code come from the subject's notice and travel in the request
body, never in the URL, so they cannot end up in access logs, proxies or browser history.
No bearer token is needed; a wrong code answers 401 and says nothing about the request.
Repeated wrong codes from one client, for one request id or over all, answer 429 with
``Retry-After`` for a while (:mod:`carewall.api.ratelimit`), so codes cannot be guessed;
one client's wrong codes never block another (request ids are public).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from carewall.api.models import SubjectAppealIn, SubjectViewIn
from carewall.api.ratelimit import limiter_of
from carewall.api.requests import service_of
from carewall.errors import AuthError, RateLimitError
from carewall.service import SubjectView

__all__ = ["router"]

router = APIRouter(prefix="/api/subject", tags=["subject"])

_T = TypeVar("_T")

_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "too many wrong codes from this client (for this request id, or "
        "over all); "
        "wait the number of seconds in Retry-After",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
}


def _client(request: Request) -> str:
    # The peer address as uvicorn gives it (a trusted proxy's forwarded address only when
    # uvicorn is configured to trust that proxy); never a header the client chose.
    return request.client.host if request.client else "unknown"


def _limited(request: Request, request_id: str, call: Callable[[], _T]) -> _T | JSONResponse:
    """Run ``call`` unless blocked; a wrong code (AuthError) counts as a failure."""
    limiter = limiter_of(request.app)
    client = _client(request)
    try:
        limiter.check(request_id, client)
    except RateLimitError as e:
        # Rendered here because the error shape needs a Retry-After header beside it.
        return JSONResponse(
            e.diagnostics(), status_code=e.status, headers={"Retry-After": str(e.retry_after)}
        )
    try:
        return call()
    except AuthError:
        limiter.failure(request_id, client)
        raise


@router.post(
    "/view",
    response_model=SubjectView,
    summary="What was released about me",
    responses=_LIMITED,
)
def view(request: Request, body: SubjectViewIn) -> SubjectView | JSONResponse:
    service = service_of(request)
    return _limited(request, body.request, lambda: service.subject_view(body.request, body.code))


@router.post(
    "/appeal",
    response_model=SubjectView,
    summary="Appeal a release about me",
    responses=_LIMITED,
)
def appeal(request: Request, body: SubjectAppealIn) -> SubjectView | JSONResponse:
    service = service_of(request)

    def lodge() -> SubjectView:
        service.subject_appeal(body.request, body.code, body.grounds)
        return service.subject_view(body.request, body.code)

    return _limited(request, body.request, lodge)
