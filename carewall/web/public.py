"""The public's pages: the firewall statement at ``/``, the statistics, and the log's page.

Everything here is computed from the public log alone (never the private record) and says
which signed checkpoint it covers, so a reader can check it with ``carewall audit``. The
``audit`` command shown names the configured public URL, never the request's Host header.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from carewall import labels
from carewall.ledger.checkpoint import parse_checkpoint
from carewall.service import Service
from carewall.service.statistics import statistics_at
from carewall.web.templating import render
from carewall.witness.client import cosigned_checkpoint
from carewall.witness.status import WitnessRow, witness_rows

__all__ = ["home", "router"]

router = APIRouter(include_in_schema=False)
RECENT = 20


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _audit_command(request: Request, service: Service) -> str:
    public_url: str | None = getattr(request.app.state, "public_url", None)
    return f"carewall audit {public_url or 'URL'} --key {service.ledger.verifier_key}"


def _signed_size(service: Service) -> tuple[int, str]:
    note = service.ledger.checkpoint()
    cp = parse_checkpoint(note.split("\n\n", 1)[0] + "\n")
    return cp.size, note


def _witnesses(request: Request, service: Service) -> list[WitnessRow]:
    asked = getattr(request.app.state, "witnesses", ())
    return witness_rows(service.ledger, asked)[1]


def home(request: Request) -> HTMLResponse:
    """``/`` for a browser: what this is, the promise, and the firewall statement."""
    service = _service(request)
    stats = statistics_at(service, None)
    return render(
        request,
        "home.html",
        {
            "title": "Firewall statement",
            "stats": stats,
            "origin": service.ledger.origin,
            "audit": _audit_command(request, service),
            "witnesses": _witnesses(request, service),
        },
    )


@router.get("/log/", response_class=HTMLResponse)
def log_page(request: Request) -> HTMLResponse:
    service = _service(request)
    size, _note = _signed_size(service)
    start = max(0, size - RECENT)
    recent: list[dict[str, Any]] = []
    for offset, raw in enumerate(service.ledger.entries(start, size) if size else []):
        entry = json.loads(raw)
        recent.append(
            {
                "index": start + offset,
                "kind": entry.get("kind", "?"),
                "time": entry.get("time", ""),
                "text": labels.describe_entry(entry),
            }
        )
    recent.reverse()
    return render(
        request,
        "log.html",
        {
            "title": "Public log",
            "origin": service.ledger.origin,
            "key": service.ledger.verifier_key,
            "size": size,
            "checkpoint": cosigned_checkpoint(service.ledger),
            "recent": recent,
            "audit": _audit_command(request, service),
            "witnesses": _witnesses(request, service),
        },
    )
