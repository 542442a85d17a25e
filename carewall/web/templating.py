"""Jinja over our templates and GOV.UK Frontend's macros, and the one way pages are rendered.

The macros are ``govuk-frontend-jinja`` (a like-for-like port of GOV.UK Frontend's Nunjucks
macros), loaded under the ``govuk_frontend_jinja/`` prefix. Autoescaping is on for every
template: anything a requester typed is text, never markup.

Each page gets its own Content-Security-Policy with a fresh nonce: scripts and styles from
this origin only, the nonce for the one inline line GOV.UK's template needs, forms posting
only here, no framing. Pages that show private data are never cached.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, PackageLoader, PrefixLoader

from carewall import __version__, labels

__all__ = ["environment", "render"]

SERVICE_NAME = "carewall"


@cache
def environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader(
            [
                PackageLoader("carewall.web", "templates"),
                PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
            ]
        ),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        # The GOV.UK macros test optional parameters by reading them, so undefined values
        # must be falsy rather than raise; our own templates are checked by the tests.
    )
    env.globals.update(
        serviceName=SERVICE_NAME,
        serviceUrl="/",
        version=__version__,
        label=labels.label,
        sentence=labels.sentence,
    )
    env.filters["label_of"] = lambda value, kind: labels.label(kind, str(value))
    env.filters["thousands"] = lambda n: f"{int(n):,}"
    return env


def _csp(nonce: str) -> str:
    return (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self'; img-src 'self' data:; font-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    )


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` as a page; the CSRF token and the signed-in user come along."""
    from carewall.web.security import csrf_token, current_user  # one-way: security is lower

    nonce = secrets.token_urlsafe(16)
    ctx: dict[str, Any] = {
        "request": request,
        "cspNonce": nonce,
        "assetPath": "/assets",
        "csrf_token": csrf_token(request),
        "user": current_user(request),
        "path": request.url.path,
    }
    ctx.update(context or {})
    html = environment().get_template(template).render(ctx)
    response = HTMLResponse(html, status_code=status, headers=dict(headers or {}))
    response.headers["Content-Security-Policy"] = _csp(nonce)
    security_cookie = request.scope.get("carewall.set_csrf_cookie")
    if security_cookie:
        from carewall.web.security import set_anonymous_csrf_cookie

        set_anonymous_csrf_cookie(request, response, security_cookie)
    return response
