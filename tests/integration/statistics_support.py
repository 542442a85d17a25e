"""A log with a request in every state, for the statistics tests (API and audit)."""

from __future__ import annotations

from datetime import UTC, datetime

from api_support import example, refused, reviewable
from fastapi import FastAPI

from carewall.api import statistics
from carewall.service import Service


def with_statistics(app: FastAPI) -> FastAPI:
    """``app`` with the statistics routes, unless ``create_app`` already includes them."""
    if not any(getattr(r, "path", None) == "/statistics.json" for r in app.routes):
        app.include_router(statistics.router)
    return app


def populate(service: Service) -> None:
    """Requests in two months (and none between), in every outcome but awaiting_decision."""
    service.clock = lambda: datetime(2036, 1, 15, 10, 0, tzinfo=UTC)
    released = service.submit(reviewable())
    service.review(released.id, "dpo-islington", True)
    refused_by_reviewer = service.submit(reviewable())
    service.review(refused_by_reviewer.id, "dpo-islington", False)
    service.clock = lambda: datetime(2036, 3, 10, 10, 0, tzinfo=UTC)
    service.submit(refused())
    withdrawn = service.submit(reviewable())
    service.withdraw(withdrawn.id, "met-police")
    service.submit(reviewable())  # awaiting review
    appealed = service.submit(refused())
    service.appeal(appealed.id, "requester", "the offence is not an immigration offence")
    service.decide_appeal(appealed.id, "appeals-islington", True)
    service.submit(example("01-home-office-dfe-school-trace.json"))  # refused by the pledge
    service.submit(example("09-council-s47-child-enquiry.json"))
