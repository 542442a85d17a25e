"""Requests as the requester sees them: submit, status, appeal a refusal, withdraw.

A requester token sees only requests its organisation made; holder-side tokens (reviewers)
see requests held by their organisation; an admin sees its organisation's holdings, redacted.
A request outside the caller's scope answers 404, exactly as one that does not exist, so ids
reveal nothing.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from carewall.api.auth import ForbiddenError, Principal, require
from carewall.api.models import AppealIn, RequestStatus
from carewall.api.paging import CURSOR, DEFAULT_LIMIT, LIMIT, PAGED, decode_cursor, link_next
from carewall.api.token_cache import require_live_at_commit
from carewall.errors import CarewallError, InputError, NotFoundError
from carewall.policy.request import DisclosureRequest
from carewall.policy.request import _decode as decode_request
from carewall.service import RequestRecord, RequestSummary, Service, Submitted
from carewall.service.idempotency import check_key
from carewall.service.records import AppealRecord, Replayed

__all__ = [
    "REQUEST_ID",
    "RequestState",
    "as_seen_by",
    "in_scope",
    "record_in_scope",
    "router",
    "service_of",
]

REQUEST_ID = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="request id")]
# Every stage and outcome (carewall.service.lifecycle Stage and Outcome; the DPO pages'
# STATES), outcomes first: a typo is a 422 naming ``state`` and listing these, never a
# silently empty list.
RequestState = Literal[
    "refused",
    "review",
    "released",
    "withdrawn",
    "received",
    "decided",
    "reviewed",
    "appealed",
    "upheld",
    "overturned",
]
STATE = Annotated[
    RequestState | None,
    Query(description="a stage (e.g. decided) or an outcome (e.g. refused)"),
]

router = APIRouter(prefix="/api/requests", tags=["requests"])

Anyone = Depends(require("requester", "release_reviewer", "appeal_reviewer", "admin"))
Requester = Depends(require("requester"))
# Submit confirms its token live in the transaction that records the request, so the
# token may come from the cache of tokens seen live (see carewall.api.token_cache).
RequesterAtCommit = Depends(require_live_at_commit("requester"))


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
            "appeals": [a.model_copy(update={"grounds": REDACTED}) for a in record.appeals],
        }
    )


def _for_requester(record: RequestRecord) -> RequestRecord:
    """The record as its requester sees it: a subject's appeal without its grounds.

    The grounds of a subject's appeal are written for the holder (its reviewers) alone;
    the requester learns that an appeal was lodged and how it was decided, never why."""

    def without_subjects_grounds(a: AppealRecord) -> AppealRecord:
        return a if a.by == "requester" else a.model_copy(update={"grounds": None})

    appeal = record.appeal
    return record.model_copy(
        update={
            "appeal": None if appeal is None else without_subjects_grounds(appeal),
            "appeals": [without_subjects_grounds(a) for a in record.appeals],
        }
    )


def as_seen_by(principal: Principal, record: RequestRecord) -> RequestRecord:
    """``record`` with what ``principal``'s role may not read taken out."""
    if principal.role == "admin":
        return _redacted(record)
    if principal.role == "requester":
        return _for_requester(record)
    return record  # the holder's reviewers read the whole DPO record


def summary_in_scope(service: Service, principal: Principal, request_id: str) -> RequestSummary:
    """The request's summary if the caller may see it, or the same 404 as a missing one.

    One row read: for checks before an action, where the whole record (tens of megabytes
    for a request about 100,000 people) is not needed.
    """
    summary = service.summary(request_id)
    if not in_scope(principal, summary.holder, summary.requester):
        raise NotFoundError("no such request", field="id", fix="check the request id")
    return summary


def record_in_scope(service: Service, principal: Principal, request_id: str) -> RequestRecord:
    """The record as the caller may see it, or the same 404 as a missing one.

    An admin sees only its own organisation's holdings, and then a redacted record; a
    requester sees its own requests without a subject's appeal grounds.
    """
    record = service.get(request_id)
    if not in_scope(principal, record.holder, record.requester):
        raise NotFoundError("no such request", field="id", fix="check the request id")
    return as_seen_by(principal, record)


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
_KEY_HEADER = "Idempotency-Key"
_REPLAYED = "Idempotent-Replayed"
IDEMPOTENCY_KEY = Annotated[
    str | None,
    Header(
        alias=_KEY_HEADER,
        max_length=200,
        description="Any unique string (1-128 of A-Z a-z 0-9 . _ ~ : + / = -, e.g. a UUID). "
        "A retry with the same key and document within 24 hours returns the first result "
        f"(200, header {_REPLAYED}: true) and records nothing; the same key with another "
        "document is refused (409). Keys are per requesting organisation.",
    ),
]
_SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A retry with the same Idempotency-Key: the first submission's result",
        "model": Submitted,
        "headers": {_REPLAYED: {"schema": {"type": "string", "enum": ["true"]}}},
    },
    409: {
        "description": "The Idempotency-Key was used for a different document",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    },
}


def _key_error(e: CarewallError) -> CarewallError:
    """The service's error about its idempotency_key, named as the caller sent it."""
    if e.field != "idempotency_key":
        return e
    return type(e)(e.message, field=_KEY_HEADER, fix=e.fix)


@router.post(
    "",
    status_code=201,
    response_model=Submitted,
    openapi_extra=_DOC_SCHEMA,
    responses=_SUBMIT_RESPONSES,
    summary="Submit a disclosure request (contract §3)",
)
async def submit(
    request: Request,
    response: Response,
    principal: Annotated[Principal, RequesterAtCommit],
    idempotency_key: IDEMPOTENCY_KEY = None,
) -> Submitted:
    key = None if idempotency_key is None else check_key(idempotency_key, _KEY_HEADER)
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
    try:
        result: Submitted = await run_in_threadpool(
            partial(service.submit, doc, idempotency_key=key, token=principal.token_id)
        )
    except CarewallError as e:
        named = _key_error(e)
        if named is e:
            raise
        raise named from e
    if isinstance(result, Replayed):
        response.status_code = 200
        response.headers[_REPLAYED] = "true"
    return result


def page_of_requests(
    request: Request,
    response: Response,
    limit: int,
    cursor: str | None,
    **filters: Any,
) -> list[RequestSummary]:
    """One page of ``service.list_requests(**filters)``, linking the next (keyset paging)."""
    after = decode_cursor(cursor, (str, str))
    rows = service_of(request).list_requests(
        **filters, limit=limit + 1, start_after=None if after is None else (after[0], after[1])
    )
    page = rows[:limit]
    more = len(rows) > limit
    link_next(request, response, (page[-1].received_at, page[-1].id) if more else None, limit)
    return page


@router.get(
    "",
    response_model=list[RequestSummary],
    responses=PAGED,
    summary="Requests the caller may see, oldest first, a page at a time",
)
def list_requests(
    request: Request,
    response: Response,
    principal: Annotated[Principal, Anyone],
    state: STATE = None,
    limit: LIMIT = DEFAULT_LIMIT,
    cursor: CURSOR = None,
) -> list[RequestSummary]:
    # an admin, like a reviewer, sees only what its own organisation holds (contract §2)
    scope = "requester" if principal.role == "requester" else "holder"
    return page_of_requests(
        request, response, limit, cursor, **{scope: principal.organisation}, state=state
    )


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
    record = service.appeal(request_id, "requester", body.grounds)
    return RequestStatus.of(as_seen_by(principal, record))


@router.post("/{request_id}/withdraw", response_model=RequestStatus, summary="Withdraw a request")
def withdraw(
    request: Request, request_id: REQUEST_ID, principal: Annotated[Principal, Requester]
) -> RequestStatus:
    service = service_of(request)
    record_in_scope(service, principal, request_id)
    return RequestStatus.of(
        as_seen_by(principal, service.withdraw(request_id, principal.organisation))
    )


def document_schema() -> dict[str, Any]:
    """The JSON schema of the request document, with its parts as OpenAPI components."""
    return DisclosureRequest.model_json_schema(ref_template="#/components/schemas/{model}")
