"""Server-rendered pages over the same service facade as the API.

GOV.UK Frontend (from the npm registry) styles them and ``govuk-frontend-jinja`` supplies
the design system's own macros. Every page works without JavaScript. :func:`install` adds
the pages to the API's FastAPI app, so one server and one service answer both.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from carewall.web import dpo, public, review, signin, statistics, subject
from carewall.web.assets import mount_assets
from carewall.web.templating import render

__all__ = ["install"]

_log = logging.getLogger("carewall.web")

_TITLES = {
    400: "There is a problem with your request",
    401: "You need to sign in",
    403: "You cannot do that",
    404: "Page not found",
    405: "Page not found",
    409: "That cannot be done now",
    413: "What you sent is too large",
    422: "There is a problem with your request",
    429: "Too many attempts",
    503: "Sorry, the service is unavailable",
}


def _page_error(request: Request, status: int, body: dict[str, Any]) -> HTMLResponse:
    """An error as a page: what went wrong and what to do, never internal detail."""
    title = _TITLES.get(status, "Sorry, there is a problem with the service")
    message = str(body.get("message") or title)
    if status == 404:
        message = "If you typed the web address, check it is correct."
    context = {
        "status": status,
        "title": title,
        "message": message[:1].upper() + message[1:],
        "fix": body.get("fix"),
    }
    return render(request, "error.html", context, status=status)


def install(app: FastAPI) -> None:
    """Add the pages, their static files and HTML error pages to ``app``."""
    if not mount_assets(app):
        _log.warning("GOV.UK Frontend not found: pages are unstyled; run 'make install'")
    static = Path(__file__).parent / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")
    for router in (
        public.router,
        statistics.router,
        subject.router,
        signin.router,
        review.router,
        dpo.router,
    ):
        app.include_router(router)
    app.state.page_error = _page_error
    app.state.html_index = public.home
