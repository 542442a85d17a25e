"""Before serving: can this process listen on HOST:PORT? One readable line if not.

uvicorn reports a taken port as a logged ``[Errno 98]`` and exit 1, after the instance has
been opened (and, for the demo, a year of requests built). :func:`check_port` binds the
address first, as uvicorn will (``SO_REUSEADDR`` on POSIX, IPv6 sockets IPv6-only, every
address the host name resolves to), and says what to do instead. Another process can still
take the port between the check and the start; then uvicorn's own error stands.
"""

from __future__ import annotations

import errno
import os
import socket

from carewall.errors import CarewallError, ConflictError, InputError

__all__ = ["check_port", "listen_error"]

_TRIES = 20  # ports after a taken one tried for a free one to suggest


def listen_error(host: str, port: int) -> OSError | None:
    """The error binding ``host:port`` for TCP gives, or None when it can be listened on."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        return e
    except UnicodeError as e:  # a host name IDNA cannot encode (a label over 63 letters)
        return OSError(errno.EADDRNOTAVAIL, str(e))
    for family, kind, proto, _, address in addresses:
        try:
            with socket.socket(family, kind, proto) as sock:
                if os.name != "nt":  # on Windows this option would let us steal the port
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
        except OSError as e:
            return e
    return None


def _free_after(host: str, port: int) -> int | None:
    for p in range(port + 1, min(port + 1 + _TRIES, 65536)):
        if listen_error(host, p) is None:
            return p
    return None


def check_port(host: str, port: int, *, make_hint: bool = False) -> None:
    """Raise a one-line :class:`CarewallError` (exit 2) unless ``host:port`` can be listened on.

    ``make_hint`` adds the ``make run PORT=…`` spelling (the demo is what ``make run`` runs).
    """
    err = listen_error(host, port)
    if err is None:
        return
    if isinstance(err, socket.gaierror) or err.errno == errno.EADDRNOTAVAIL:
        unknown = isinstance(err, socket.gaierror)
        raise InputError(
            "cannot be resolved" if unknown else "is not an address of this machine",
            field="--host",
            fix="use 127.0.0.1, or 0.0.0.0 to listen on every interface",
        ) from err
    if err.errno == errno.EADDRINUSE:
        free = _free_after(host, port)
        if free is None:
            fix = "choose another with --port"
        else:
            fix = f"choose another with --port, e.g. --port {free}"
            if make_hint:
                fix += f" or make run PORT={free}"
        raise ConflictError(f"port {port} on {host} is in use", fix=fix) from err
    if err.errno in (errno.EACCES, errno.EPERM):
        raise ConflictError(
            f"not allowed to listen on port {port} on {host}",
            fix="ports below 1024 need administrator rights: choose another with --port",
        ) from err
    raise CarewallError(
        f"cannot listen on port {port} on {host}: {err.strerror or err}",
        fix="choose another --host or --port",
    ) from err
