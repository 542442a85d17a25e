"""Requests as the requester sees them: submit, status, appeal a refusal, withdraw.

A requester token sees only requests its organisation made; holder-side tokens (reviewers)
see requests held by their organisation; an admin sees its organisation's holdings, redacted.
A request outside the caller's scope answers 404, exactly as one that does not exist, so ids
reveal nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from carewall.api.auth import ForbiddenError, Principal, require
from carewall.api.models import AppealIn, RequestStatus
from carewall.errors import InputError, NotFoundError
from carewall.policy.request import DisclosureRequest
from carewall.policy.request import _decode as decode_request
from carewall.service import RequestRecord, RequestSummary, Service, Submitted

__all__ = ["REQUEST_ID", "in_scope", "record_in_scope", "router", "service_of"]

REQUEST_ID = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="request id")]
STATE = Annotated[
    str | None,
    Query(pattern=r"^[a-z_]{1,32}$", description="a stage (e.g. decided) or an outcome"),
]

router = APIRouter(prefix="/api/requests", tags=["requests"])

Anyone = Depends(require("requester", "release_reviewer", "appeal_reviewer", "admin"))
Requester = Depends(require("requester"))


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def in_scope(principal: Principal, holder: str, requester: str) -> bool:
    if principal.role == "requester":
        return requester == principal.organisation
    # reviewers and admins: only what their organisation holds (contract §2)
    return holder == principal.organisation


REDACTED = "[redacted]"


def _redacted(record: RequestRecord) -> RequestRecord:
    """The record as an admin sees it: no subject references, officers' or authorisers'
    details, necessity, review note or appeal grounds (contract §2). The shape is unchanged,
    so the response still matches the schema."""
    appeal = record.appeal.model_copy(update={"grounds": REDACTED}) if record.appeal else None
    return record.model_copy(
        update={
            "officer": None,
            "authorised_by": None,
            "necessity": None,
            "review_note": None,
            "subjects": [s.model_copy(update={"ref": REDACTED}) for s in record.subjects],
            "appeal": appeal,
        }
    )


def record_in_scope(service: Service, principal: Principal, request_id: str) -> RequestRecord:
    """The record as the caller may see it, or the same 404 as a missing one.

    An admin sees only its own organisation's holdings, and then a redacted record.
    """
    record = service.get(request_id)
    if not in_scope(principal, record.holder, record.requester):
        raise NotFoundError("no such request", field="id", fix="check the request id")
    return _redacted(record) if principal.role == "admin" else record


# The document is parsed by the same parser as the CLI's, so the field names in errors
# match; the schema is published so clients (and the schema tests) know the shape.
_DOC_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/DisclosureRequest"}}
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=Submitted,
    openapi_extra=_DOC_SCHEMA,
    summary="Submit a disclosure request (contract §3)",
)
async def submit(request: Request, principal: Annotated[Principal, Requester]) -> Submitted:
    body = await request.body()
    try:
        doc = decode_request(body)
    except ValueError as e:  # e.g. an integer literal too long to convert
        raise InputError(
            "not valid JSON: a value is out of range", field="request", fix="fix the JSON"
        ) from e
    if not isinstance(doc, dict):
        raise InputError(
            "must be a JSON object", field="request", fix="give one object as in the request format"
        )
    if doc.get("requester") != principal.organisation:
        raise ForbiddenError(
            "a token may submit requests only for its own organisation",
            fix="set requester to your organisation's id",
        )
    service = service_of(request)
    result: Submitted = await run_in_threadpool(service.submit, doc)
    return result


@router.get("", response_model=list[RequestSummary], summary="Requests the caller may see")
def list_requests(
    request: Request, principal: Annotated[Principal, Anyone], state: STATE = None
) -> list[RequestSummary]:
    service = service_of(request)
    # an admin, like a reviewer, sees only what its own organisation holds (contract §2)
    if principal.role == "requester":
        return service.list_requests(requester=principal.organisation, state=state)
    return service.list_requests(holder=principal.organisation, state=state)


@router.get("/{request_id}", response_model=RequestStatus, summary="A request's status")
def status(
    request: Request, request_id: REQUEST_ID, principal: Annotated[Principal, Anyone]
) -> RequestStatus:
    return RequestStatus.of(record_in_scope(service_of(request), principal, request_id))


@router.post("/{request_id}/appeal", response_model=RequestStatus, summary="Appeal a refusal")
def appeal(
    request: Request,
    request_id: REQUEST_ID,
    body: AppealIn,
    principal: Annotated[Principal, Requester],
) -> RequestStatus:
    service = service_of(request)
    record_in_scope(service, principal, request_id)
    return RequestStatus.of(service.appeal(request_id, "requester", body.grounds))


@router.post("/{request_id}/withdraw", response_model=RequestStatus, summary="Withdraw a request")
def withdraw(
    request: Request, request_id: REQUEST_ID, principal: Annotated[Principal, Requester]
) -> RequestStatus:
    service = service_of(request)
    record_in_scope(service, principal, request_id)
    return RequestStatus.of(service.withdraw(request_id, principal.organisation))


def document_schema() -> dict[str, Any]:
    """The JSON schema of the request document, with its parts as OpenAPI components."""
    return DisclosureRequest.model_json_schema(ref_template="#/components/schemas/{model}")
