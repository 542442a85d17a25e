"""The public index at ``/``: what this instance is, where its log is, and aggregate counts.

Everything here is public and non-personal: organisation functions, purposes, outcomes and
counts, the log's origin, size and verifier key. It is what ``carewall demo`` points people at.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Request

from carewall import __version__
from carewall.service import Service

__all__ = ["router"]

router = APIRouter(tags=["public"])


@router.get("/", summary="What this carewall instance is, its log, and public counts")
def index(request: Request) -> dict[str, Any]:
    service: Service = request.app.state.service
    functions = {o.id: o.function for o in service.register().organisations.values()}
    by_function: Counter[str] = Counter()
    by_outcome: Counter[str] = Counter()
    released_to: Counter[str] = Counter()
    for (requester, outcome), n in service.outcome_counts().items():
        fn = functions.get(requester, "other_public_body")
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
            "audit": f"carewall audit {request.base_url} --key {service.ledger.verifier_key}",
        },
        "api": "/openapi.json",
        "requests": {
            "total": sum(by_outcome.values()),
            "by_requester_function": dict(sorted(by_function.items())),
            "by_outcome": dict(sorted(by_outcome.items())),
            "released_to_function": dict(sorted(released_to.items())),
        },
    }
