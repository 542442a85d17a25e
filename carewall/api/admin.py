"""Administration: organisations, reviewers, API tokens and the local policy.

Every policy change is a ledger entry (the service appends it); the pledge cannot be removed
because the policy engine refuses any set without it verbatim.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from carewall.api import auth
from carewall.api.auth import Principal, require
from carewall.api.models import (
    IssuedTokenOut,
    OrganisationIn,
    OrganisationOut,
    PolicyIn,
    PolicyOut,
    ReviewerIn,
    ReviewerOut,
    TokenIn,
    TokenOut,
)
from carewall.api.requests import service_of
from carewall.errors import InputError
from carewall.service import Service

__all__ = ["issue_token", "router"]

router = APIRouter(prefix="/api/admin", tags=["admin"])

Admin = Depends(require("admin"))


def issue_token(
    service: Service, organisation: str, role: str, reviewer: str | None = None
) -> auth.IssuedToken:
    """Issue a token after checking its binding against the register."""
    register = service.register()
    register.organisation(organisation, field_name="organisation")
    if reviewer is not None:
        rev = register.reviewers.get(reviewer)
        if rev is None or rev.organisation != organisation:
            raise InputError(
                "no such reviewer at this organisation",
                field="reviewer",
                fix="add the reviewer to the register first",
            )
        if role not in rev.roles:
            raise InputError(
                f"the reviewer does not hold the {role} role",
                field="role",
                fix="use a role the reviewer holds: " + ", ".join(sorted(rev.roles)),
            )
    return auth.create_token(service.store, organisation, role, reviewer)


def _token_out(info: auth.TokenInfo) -> TokenOut:
    return TokenOut(
        id=info.id,
        organisation=info.organisation,
        role=info.role,
        reviewer=info.reviewer,
        created_at=info.created_at,
        revoked_at=info.revoked_at,
    )


@router.get("/organisations", response_model=list[OrganisationOut])
def organisations(request: Request, _: Annotated[Principal, Admin]) -> list[OrganisationOut]:
    register = service_of(request).register()
    return [
        OrganisationOut(id=o.id, name=o.name, function=o.function)
        for o in register.organisations.values()
    ]


@router.post("/organisations", status_code=201, response_model=OrganisationOut)
def add_organisation(
    request: Request, body: OrganisationIn, _: Annotated[Principal, Admin]
) -> OrganisationOut:
    org = service_of(request).add_organisation(body.id, body.name, body.function)
    return OrganisationOut(id=org.id, name=org.name, function=org.function)


@router.get("/reviewers", response_model=list[ReviewerOut])
def reviewers(request: Request, _: Annotated[Principal, Admin]) -> list[ReviewerOut]:
    register = service_of(request).register()
    return [
        ReviewerOut(id=r.id, organisation=r.organisation, roles=sorted(r.roles))
        for r in register.reviewers.values()
    ]


@router.post("/reviewers", status_code=201, response_model=ReviewerOut)
def add_reviewer(request: Request, body: ReviewerIn, _: Annotated[Principal, Admin]) -> ReviewerOut:
    rev = service_of(request).add_reviewer(body.id, body.name, body.organisation, list(body.roles))
    return ReviewerOut(id=rev.id, organisation=rev.organisation, roles=sorted(rev.roles))


@router.get("/tokens", response_model=list[TokenOut])
def tokens(request: Request, _: Annotated[Principal, Admin]) -> list[TokenOut]:
    return [_token_out(i) for i in auth.list_tokens(service_of(request).store)]


@router.post("/tokens", status_code=201, response_model=IssuedTokenOut)
def create_token(request: Request, body: TokenIn, _: Annotated[Principal, Admin]) -> IssuedTokenOut:
    issued = issue_token(service_of(request), body.organisation, body.role, body.reviewer)
    return IssuedTokenOut(**_token_out(issued.info).model_dump(), secret=issued.secret)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(
    request: Request, token_id: Annotated[str, auth.TOKEN_ID], _: Annotated[Principal, Admin]
) -> None:
    auth.revoke_token(service_of(request).store, token_id)


@router.get("/policy", response_model=PolicyOut)
def policy(request: Request, _: Annotated[Principal, Admin]) -> PolicyOut:
    service = service_of(request)
    return PolicyOut(policy=str(service.engine().policy_hash), text=service.local_policy())


@router.put("/policy", response_model=PolicyOut)
def set_policy(request: Request, body: PolicyIn, _: Annotated[Principal, Admin]) -> PolicyOut:
    service = service_of(request)
    return PolicyOut(policy=service.set_local_policy(body.text), text=body.text)
