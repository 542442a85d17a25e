"""The FastAPI application: one router per area over one :class:`Service`, plus ``/log/``.

``create_app(service)`` is what ``carewall serve`` runs under uvicorn. The OpenAPI document
is served at ``/openapi.json``; the interactive docs pages are off because they load scripts
from a CDN, which the Content-Security-Policy (rightly) forbids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from carewall import __version__, web
from carewall.api import (
    admin,
    agreements,
    certificates,
    deferrals,
    index,
    requests,
    review,
    statistics,
    subject,
)
from carewall.api.bodies import JSONBodyMiddleware
from carewall.api.errors import install_error_handlers
from carewall.api.log import make_log_router
from carewall.api.middleware import BodyLimitMiddleware, SecurityHeadersMiddleware
from carewall.api.token_cache import TokenCache
from carewall.errors import CarewallError
from carewall.service import Service
from carewall.service.jobs import sweep_once
from carewall.witness.client import cosigned_checkpoint, witness_forever
from carewall.witness.config import WitnessConfig, load_config
from carewall.witness.status import make_witnesses_router

__all__ = ["create_app"]

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "field": {"type": "string"},
        "fix": {"type": "string"},
        "fields": {"type": "array", "items": {"type": "string"}},
    },
}


_log = logging.getLogger("carewall.api")

MAX_REQUEST_BODY = 16 << 20  # bytes of a request document (POST /api/requests)


async def _publisher(service: Service) -> None:
    """Sign a checkpoint over the log's tail each interval, so no entry waits unsigned."""
    while True:
        # Tick at least once a second so a changed interval takes effect promptly.
        await asyncio.sleep(min(max(service.publish_interval, 0.01), 1.0))
        try:
            await asyncio.to_thread(service.publish_if_due)
        except CarewallError as e:
            # The database may be down; the next tick tries again. No personal data here.
            _log.warning("checkpoint publisher: %s", e.code)


async def _job_worker(service: Service) -> None:
    """The background worker: each tick, run queued jobs (a release's notices), free notice
    claims a dead worker left, and send any notice left undelivered (see service.jobs)."""
    policy = service.job_policy
    while not policy.stop.is_set():
        await asyncio.sleep(min(max(policy.tick, 0.01), 5.0))
        try:
            await asyncio.to_thread(sweep_once, service)
        except CarewallError as e:
            # The database may be down; the next tick tries again. No personal data here.
            _log.warning("job worker: %s", e.code)
        except Exception as e:  # never let one bad job stop the worker; name only its kind
            _log.error("job worker: unexpected %s", type(e).__name__)


def create_app(
    service: Service,
    *,
    max_body: int = 1 << 20,
    max_request_body: int = MAX_REQUEST_BODY,
    public_url: str | None = None,
    witnesses: WitnessConfig | None = None,
) -> FastAPI:
    """The HTTP API over ``service``; request bodies over ``max_body`` bytes get 413, except
    a request document (``POST /api/requests``), which may be up to ``max_request_body``.

    ``public_url`` is the address auditors reach this instance at (checked: http or https,
    no credentials); ``/`` names it in its audit command, never the request's Host header.
    ``witnesses`` (default: the TOML file named by ``$CAREWALL_WITNESSES``, if set) lists the
    witnesses asked to cosign each new checkpoint, off the write path (docs/witnesses.md).
    """
    checked_url = None if public_url is None else index.check_public_url(public_url)
    if witnesses is None and os.environ.get("CAREWALL_WITNESSES"):
        witnesses = load_config(Path(os.environ["CAREWALL_WITNESSES"]))
    asked = () if witnesses is None else witnesses.witnesses

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = []
        if service.ledger.writable:
            tasks.append(asyncio.create_task(_publisher(service)))
            # Large releases' notices are left to this worker (small ones are sent at once).
            service.job_policy.stop.clear()
            service.job_policy.background = True
            tasks.append(asyncio.create_task(_job_worker(service)))
            if asked:
                tasks.append(asyncio.create_task(witness_forever(service.ledger, asked)))
        try:
            yield
        finally:
            service.job_policy.background = False
            service.job_policy.stop.set()  # a job in hand stops after its current batch
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        lifespan=lifespan,
        title="carewall",
        version=__version__,
        description="A verifiable data firewall for public services.",
        docs_url=None,
        redoc_url=None,
        # No 307 to the other spelling of a path: Starlette builds it from the Host header
        # the client sent, before any token is checked. A path is spelled one way; any
        # other is a plain 404 in the one error shape.
        redirect_slashes=False,
    )
    app.state.service = service
    app.state.store = service.store
    app.state.token_cache = TokenCache()
    app.state.public_url = checked_url
    app.state.witnesses = asked
    if checked_url is not None:
        service.public_url = checked_url
    install_error_handlers(app)
    for router in (
        index.router,
        requests.router,
        review.router,
        deferrals.router,
        subject.router,
        admin.router,
        agreements.router,
        statistics.router,
        certificates.router,
    ):
        app.include_router(router)
    app.include_router(make_log_router(lambda: service.ledger, cosigned_checkpoint))
    app.include_router(make_witnesses_router(lambda: service.ledger, asked))
    web.install(app)
    # Outermost first: headers go on every response, including a 413 from the limit.
    # A request document lists its subjects: 16 MiB holds about 230,000 of them.
    submit = ("POST", "/api/requests")
    larger = {submit: max(max_body, max_request_body)}
    # Every JSON body is read strictly (each key once, UTF-8) inside the limit; the
    # request document's route reads its own, with the document's decoder.
    app.add_middleware(JSONBodyMiddleware, own_parsers={submit})
    app.add_middleware(BodyLimitMiddleware, max_body=max_body, larger=larger)
    app.add_middleware(SecurityHeadersMiddleware)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            doc = requests.document_schema()
            components.update(doc.pop("$defs", {}))
            components["DisclosureRequest"] = doc
            components["Error"] = _ERROR_SCHEMA
            _document_errors(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _document_errors(schema: dict[str, Any]) -> None:
    """Every operation may answer in the one error shape; say so, so clients can rely on it."""
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    codes = {
        "400": "bad request parameters",
        "401": "missing, unknown or revoked token",
        "403": "this token's role may not do this",
        "404": "not found (or not yours)",
        "409": "the request is not in a state that allows this",
        "413": "body over the size limit",
        "422": "malformed input; `field` names the field",
        "503": "database unavailable; nothing was recorded",
    }
    for path_item in schema.get("paths", {}).values():
        for op in path_item.values():
            responses = op.setdefault("responses", {})
            for code, text in codes.items():
                responses.setdefault(code, {"description": text, **ref})
            if "422" in responses:
                responses["422"] = {"description": codes["422"], **ref}
