"""The public index at ``/``: what this instance is, where its log is, and aggregate counts.

Everything here is public and non-personal: organisation functions, purposes, outcomes and
counts, the log's origin, size and verifier key. It is what ``carewall demo`` points people at.

The ``audit`` command it shows names the instance's configured public URL
(``carewall serve --public-url`` / ``CAREWALL_PUBLIC_URL``), never the request's ``Host``
header: a page that builds links from ``Host`` can be made to point auditors anywhere.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Request

from carewall import __version__
from carewall.errors import InputError
from carewall.service import Service

__all__ = ["check_public_url", "router"]

_URL_FIX = "give the address auditors use, e.g. https://carewall.example.gov.uk/"


def check_public_url(url: str, field: str = "public_url") -> str:
    """The instance's public base URL, checked and normalised to end with ``/``.

    http or https, a host, no user name or password, no query or fragment, printable ASCII
    with no spaces. The error never repeats the URL (it might hold a password).
    """
    if not isinstance(url, str) or not url or len(url) > 2000:
        raise InputError("must be an http or https URL", field=field, fix=_URL_FIX)
    if not url.isascii() or any(not c.isprintable() or c.isspace() for c in url):
        raise InputError(
            "must be printable ASCII without spaces",
            field=field,
            fix="percent-encode the address (IDNA for a non-ASCII host)",
        )
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError:
        raise InputError("is not a valid URL", field=field, fix=_URL_FIX) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InputError("must start with http:// or https://", field=field, fix=_URL_FIX)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InputError(
            "must not hold a user name or password",
            field=field,
            fix="remove the user:password@ part; the log is public",
        )
    if not parts.hostname or port == 0:
        raise InputError("names no host, or port 0", field=field, fix=_URL_FIX)
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise InputError("must not have a query or fragment", field=field, fix=_URL_FIX)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "", ""))


router = APIRouter(tags=["public"])


@router.get("/", summary="What this carewall instance is, its log, and public counts")
def index(request: Request) -> Any:
    """JSON for programs; a browser (``Accept: text/html``) gets the firewall statement page."""
    html_index = getattr(request.app.state, "html_index", None)
    if html_index is not None and "text/html" in request.headers.get("accept", ""):
        return html_index(request)
    service: Service = request.app.state.service
    public_url: str | None = getattr(request.app.state, "public_url", None)
    # Never request.base_url: that is the client's Host header, which anyone can forge.
    target = public_url or "URL"
    by_function: Counter[str] = Counter()
    by_outcome: Counter[str] = Counter()
    released_to: Counter[str] = Counter()
    for (fn, outcome), n in service.outcomes_by_function().items():
        by_function[fn] += n
        by_outcome[outcome] += n
        if outcome == "released":
            released_to[fn] += n
    return {
        "service": "carewall",
        "version": __version__,
        "about": "A verifiable data firewall: requests for personal data held by public "
        "services are decided against the pledge, reviewed by a named person, and recorded "
        "in a public transparency log that holds no personal data.",
        "log": {
            "origin": service.ledger.origin,
            "size": service.ledger.size(),
            "verifier_key": service.ledger.verifier_key,
            "checkpoint": "/log/checkpoint",
            "url": public_url,
            "audit": f"carewall audit {target} --key {service.ledger.verifier_key}",
        },
        "api": "/openapi.json",
        "requests": {
            "total": sum(by_outcome.values()),
            "by_requester_function": dict(sorted(by_function.items())),
            "by_outcome": dict(sorted(by_outcome.items())),
            "released_to_function": dict(sorted(released_to.items())),
        },
    }
