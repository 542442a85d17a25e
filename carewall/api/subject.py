"""The subject's side: what was released about them, and their appeal.

The request id and access code come from the subject's notice and travel in the request
body, never in the URL, so they cannot end up in access logs, proxies or browser history.
No bearer token is needed; a wrong code answers 401 and says nothing about the request.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from carewall.api.models import SubjectAppealIn, SubjectViewIn
from carewall.api.requests import service_of
from carewall.service import SubjectView

__all__ = ["router"]

router = APIRouter(prefix="/api/subject", tags=["subject"])


@router.post("/view", response_model=SubjectView, summary="What was released about me")
def view(request: Request, body: SubjectViewIn) -> SubjectView:
    return service_of(request).subject_view(body.request, body.code)


@router.post("/appeal", response_model=SubjectView, summary="Appeal a release about me")
def appeal(request: Request, body: SubjectAppealIn) -> SubjectView:
    service = service_of(request)
    service.subject_appeal(body.request, body.code, body.grounds)
    return service.subject_view(body.request, body.code)
