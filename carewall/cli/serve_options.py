"""``carewall serve``'s options for slow or hostile clients and for a reverse proxy.

Each has an environment variable of the same name (``--header-timeout`` is
``CAREWALL_HEADER_TIMEOUT``, …). README "Running behind a reverse proxy" says how to set
them beside nginx or Caddy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, TypeVar

import click

from carewall.api.server import (
    DEFAULT_MAX_CONNECTIONS,
    ServeSettings,
    plan_connections,
    raise_open_file_limit,
)
from carewall.errors import InputError

__all__ = ["client_options", "settings_from"]

_F = TypeVar("_F", bound=Callable[..., Any])

_SECONDS = click.FloatRange(0.1, 3600)


def client_options(f: _F) -> _F:
    """The options, in the order --help shows them."""
    options = [
        click.option(
            "--header-timeout",
            "header_timeout",
            envvar="CAREWALL_HEADER_TIMEOUT",
            type=_SECONDS,
            default=10.0,
            show_default=True,
            metavar="SECONDS",
            help="Close a connection whose request head (line and headers) is not all in "
            "this long after it opened or after its last response.",
        ),
        click.option(
            "--body-timeout",
            "body_timeout",
            envvar="CAREWALL_BODY_TIMEOUT",
            type=_SECONDS,
            default=30.0,
            show_default=True,
            metavar="SECONDS",
            help="Answer 408 and close when a request's body is not all in this long after "
            "its head.",
        ),
        click.option(
            "--max-connections",
            "max_connections",
            envvar="CAREWALL_MAX_CONNECTIONS",
            type=click.IntRange(1, None),
            default=None,
            metavar="N",
            help=f"Connections served at once; more are answered 503 with Retry-After "
            f"(default {DEFAULT_MAX_CONNECTIONS}, or fewer if the open-file limit needs it).",
        ),
        click.option(
            "--proxy-headers/--no-proxy-headers",
            "proxy_headers",
            envvar="CAREWALL_PROXY_HEADERS",
            default=True,
            show_default=True,
            help="Take the client's address and scheme from X-Forwarded-For/-Proto, but only "
            "when the connection comes from an address in --forwarded-allow-ips.",
        ),
        click.option(
            "--forwarded-allow-ips",
            "forwarded_allow_ips",
            envvar="CAREWALL_FORWARDED_ALLOW_IPS",
            default="127.0.0.1",
            show_default=True,
            metavar="ADDRESSES",
            help="Comma-separated addresses or networks of the reverse proxies to believe "
            "(your proxy's only; '*' believes any peer: only if nothing else can reach this port).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _check_addresses(value: str) -> str:
    items = [item.strip() for item in value.split(",") if item.strip()]
    if items == ["*"]:
        return "*"
    for item in items:
        try:
            if "/" in item:
                ipaddress.ip_network(item)
            else:
                ipaddress.ip_address(item)
        except ValueError:
            raise InputError(
                f"{item!r} is not an IP address or network",
                field="--forwarded-allow-ips",
                fix="give your proxy's addresses, e.g. 127.0.0.1 or 10.0.0.0/24,::1",
            ) from None
    if not items:
        raise InputError(
            "names no address",
            field="--forwarded-allow-ips",
            fix="give your proxy's address, e.g. 127.0.0.1, or use --no-proxy-headers",
        )
    return ",".join(items)


def settings_from(options: dict[str, Any]) -> ServeSettings:
    """The settings from the options' values (checked: a bad one names its option)."""
    plan_connections(raise_open_file_limit(), options["max_connections"])
    return ServeSettings(
        header_timeout=float(options["header_timeout"]),
        body_timeout=float(options["body_timeout"]),
        max_connections=options["max_connections"],
        proxy_headers=bool(options["proxy_headers"]),
        forwarded_allow_ips=_check_addresses(str(options["forwarded_allow_ips"])),
    )
