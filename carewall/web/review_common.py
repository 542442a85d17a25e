"""What the reviewers' pages share: who may act, which requests they may see, and labels.

Scoping is the JSON API's own: :func:`carewall.api.requests.record_in_scope` decides which
records a reviewer sees (only those their organisation holds), and a request held elsewhere
answers exactly like one that does not exist (404), so ids reveal nothing. The reviewer who
signs is the one the session's token is bound to, never one named in a form.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from fastapi import Request

from carewall.api.requests import record_in_scope
from carewall.errors import ForbiddenError, NotFoundError
from carewall.service import RequestRecord, Service
from carewall.web.security import WebUser

__all__ = [
    "APPEAL",
    "RELEASE",
    "REVIEWERS",
    "appealable",
    "held_record",
    "organisation",
    "reviewable",
    "reviewer_of",
    "service_of",
    "today",
]

RELEASE = "release_reviewer"
APPEAL = "appeal_reviewer"
REVIEWERS = (RELEASE, APPEAL)
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def today(service: Service) -> str:
    """Today's date (UTC) on the service's clock, as the API's ``due=true`` reads it."""
    return service.clock().astimezone(UTC).date().isoformat()


def reviewer_of(user: WebUser) -> str:
    """The reviewer the session's token is bound to (never one named in the form)."""
    if not user.reviewer:
        raise ForbiddenError("this token is not bound to a reviewer", fix="issue a reviewer token")
    return user.reviewer


def held_record(service: Service, user: WebUser, request_id: str) -> RequestRecord:
    """The record if the user's organisation holds it; else the same 404 as a missing one."""
    if not _REQUEST_ID.fullmatch(request_id):
        raise NotFoundError("no such request", field="id", fix="check the request id")
    return record_in_scope(service, user.principal, request_id)


def reviewable(record: RequestRecord) -> bool:
    """The policy sent it for review and no one has reviewed it yet."""
    return record.stage == "decided" and record.outcome == "review"


def appealable(record: RequestRecord) -> bool:
    """An appeal is lodged and waits for a decision."""
    return record.stage == "appealed" and record.appeal is not None and not record.appeal.result


def organisation(service: Service, org_id: str) -> dict[str, Any]:
    """An organisation's name and function (retired ones too) for a page."""
    org = service.register().any_organisation(org_id)
    return {
        "id": org_id,
        "name": org.name if org else org_id,
        "function": org.function if org else "other_public_body",
    }
