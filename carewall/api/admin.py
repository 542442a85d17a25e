"""Administration over HTTP, scoped to the admin's own organisation (contract §2).

An admin token belongs to one organisation. Through the API it manages that organisation's
reviewers and tokens, and nothing else: organisations are added and retired by the operator
with ``carewall register org …``, and requester tokens for other organisations are issued
with ``carewall token create``. Every reviewer change is a public ``reviewer`` entry (the
service appends it); every token issued or revoked, and every register change, is recorded
in the private admin log. A token for another organisation's business answers 403; a token
id of another organisation answers 404, exactly as one that does not exist.

Every policy change is a ledger entry (the service appends it); the pledge cannot be removed
because the policy engine refuses any set without it verbatim.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from sqlalchemy.engine import Connection

from carewall.api import auth
from carewall.api.auth import Principal, require
from carewall.api.models import (
    AdminLogOut,
    IssuedTokenOut,
    LoggedOut,
    OrganisationOut,
    PolicyIn,
    PolicyOut,
    ReviewerChangeOut,
    ReviewerIn,
    ReviewerOut,
    RolesIn,
    TokenIn,
    TokenOut,
)
from carewall.api.paging import (
    CURSOR,
    DEFAULT_LIMIT,
    LIMIT,
    PAGED,
    decode_cursor,
    link_next,
    page_in_memory,
)
from carewall.api.requests import service_of
from carewall.errors import ForbiddenError, InputError, NotFoundError
from carewall.ids import PATTERNS
from carewall.policy import Register, Reviewer
from carewall.policy.register import IMMIGRATION_FUNCTION
from carewall.service import Service
from carewall.service.register_policy import RegisterChange

__all__ = ["issue_token", "router"]

router = APIRouter(prefix="/api/admin", tags=["admin"])

Admin = Depends(require("admin"))
ORG_ID = Path(pattern=f"^(?:{PATTERNS['organisation']})$", description="organisation id")
REVIEWER_ID = Path(pattern=f"^(?:{PATTERNS['reviewer']})$", description="reviewer id")

_OWN_ONLY = "an admin token manages only its own organisation's reviewers and tokens"


def _check_binding(register: Register, organisation: str, role: str, reviewer: str | None) -> None:
    org = register.organisation(organisation, field_name="organisation")
    if role != "requester" and org.function == IMMIGRATION_FUNCTION:
        # Its requests must still be possible (to be refused and logged), so requester
        # tokens are issued; it never administers, and never reviews a release.
        raise InputError(
            f"an {IMMIGRATION_FUNCTION} body cannot hold an admin or reviewer token",
            field="role",
            fix="issue it a requester token only (contract §2)",
        )
    if reviewer is not None:
        rev = register.reviewer(reviewer, field_name="reviewer")
        if rev.organisation != organisation:
            raise InputError(
                "the reviewer does not work for this organisation",
                field="reviewer",
                fix="name a reviewer of the token's organisation, or add one first",
            )
        if role not in rev.roles:
            raise InputError(
                f"the reviewer does not hold the {role} role",
                field="role",
                fix="use a role the reviewer holds: " + ", ".join(sorted(rev.roles)),
            )


def issue_token(
    service: Service,
    organisation: str,
    role: str,
    reviewer: str | None = None,
    *,
    actor: str = "cli",
) -> auth.IssuedToken:
    """Issue a token after checking its binding against the register.

    Refused: an unknown or retired organisation or reviewer, a reviewer of another
    organisation or without the role, and an admin or reviewer token for an
    ``immigration_enforcement`` body. The checks run in the issuing transaction.
    """

    def check(conn: Connection) -> None:
        _check_binding(service.register_locked(conn), organisation, role, reviewer)

    return auth.create_token(service.store, organisation, role, reviewer, actor=actor, check=check)


def _token_out(info: auth.TokenInfo) -> TokenOut:
    return TokenOut(
        id=info.id,
        organisation=info.organisation,
        role=info.role,
        reviewer=info.reviewer,
        created_at=info.created_at,
        revoked_at=info.revoked_at,
    )


def _reviewer_out(rev: Reviewer) -> ReviewerOut:
    return ReviewerOut(
        id=rev.id, organisation=rev.organisation, roles=sorted(rev.roles), retired_at=rev.retired_at
    )


def _change_out(change: RegisterChange[Reviewer]) -> ReviewerChangeOut:
    return ReviewerChangeOut(
        **_reviewer_out(change.record).model_dump(),
        logged=[
            LoggedOut(kind=x.kind, id=x.id, change=x.change, log_index=x.log_index)
            for x in change.logged
        ],
    )


def _own_reviewer(service: Service, principal: Principal, reviewer_id: str) -> None:
    register = service.register()
    rev = register.reviewers.get(reviewer_id) or register.retired_reviewers.get(reviewer_id)
    if rev is None:
        raise NotFoundError(
            "no such reviewer", field="id", fix="list your reviewers at /api/admin/reviewers"
        )
    if rev.organisation != principal.organisation:
        raise ForbiddenError(
            "the reviewer works for another organisation", field="id", fix=_OWN_ONLY
        )


# ----- organisations: read here, changed only by the operator ----------------------------


@router.get(
    "/organisations",
    response_model=list[OrganisationOut],
    responses=PAGED,
    summary="The organisations register (public), retired organisations included, by id",
)
def organisations(
    request: Request,
    response: Response,
    _: Annotated[Principal, Admin],
    limit: LIMIT = DEFAULT_LIMIT,
    cursor: CURSOR = None,
) -> list[OrganisationOut]:
    register = service_of(request).register()
    orgs = [*register.organisations.values(), *register.retired_organisations.values()]
    page, more = page_in_memory(orgs, lambda o: (o.id,), limit, decode_cursor(cursor, (str,)))
    link_next(request, response, more, limit)
    return [
        OrganisationOut(id=o.id, name=o.name, function=o.function, retired_at=o.retired_at)
        for o in page
    ]


@router.post(
    "/organisations",
    status_code=201,
    response_model=OrganisationOut,
    summary="Refused: organisations are registered by the operator with the CLI",
)
def add_organisation(request: Request, _: Annotated[Principal, Admin]) -> OrganisationOut:
    raise ForbiddenError(
        "an admin token cannot add organisations to the register",
        field="organisation",
        fix="the operator runs `carewall register org add ID --name NAME --function F`",
    )


@router.post(
    "/organisations/{org_id}/retire",
    response_model=OrganisationOut,
    summary="Refused: organisations are retired by the operator with the CLI",
)
def retire_organisation(
    request: Request, org_id: Annotated[str, ORG_ID], _: Annotated[Principal, Admin]
) -> OrganisationOut:
    raise ForbiddenError(
        "an admin token cannot retire organisations",
        field="organisation",
        fix="the operator runs `carewall register org retire ID`",
    )


# ----- the admin's own reviewers ------------------------------------------------------------


@router.get(
    "/reviewers",
    response_model=list[ReviewerOut],
    responses=PAGED,
    summary="Your organisation's reviewers, retired ones included, by id (never names)",
)
def reviewers(
    request: Request,
    response: Response,
    principal: Annotated[Principal, Admin],
    limit: LIMIT = DEFAULT_LIMIT,
    cursor: CURSOR = None,
) -> list[ReviewerOut]:
    register = service_of(request).register()
    revs = [*register.reviewers.values(), *register.retired_reviewers.values()]
    own = [r for r in revs if r.organisation == principal.organisation]
    page, more = page_in_memory(own, lambda r: (r.id,), limit, decode_cursor(cursor, (str,)))
    link_next(request, response, more, limit)
    return [_reviewer_out(r) for r in page]


@router.post(
    "/reviewers",
    status_code=201,
    response_model=ReviewerChangeOut,
    summary="Add a reviewer at your organisation (a public reviewer entry)",
)
def add_reviewer(
    request: Request, body: ReviewerIn, principal: Annotated[Principal, Admin]
) -> ReviewerChangeOut:
    org = body.organisation or principal.organisation
    if org != principal.organisation:
        raise ForbiddenError(
            "an admin token may add reviewers only at its own organisation",
            field="organisation",
            fix="leave organisation out, or give your own organisation's id",
        )
    change = service_of(request).add_reviewer(
        body.id, body.name, org, list(body.roles), actor=principal.token_id
    )
    return _change_out(change)


@router.put(
    "/reviewers/{reviewer_id}/roles",
    response_model=ReviewerChangeOut,
    summary="Replace a reviewer's roles (a public reviewer entry)",
)
def update_reviewer_roles(
    request: Request,
    reviewer_id: Annotated[str, REVIEWER_ID],
    body: RolesIn,
    principal: Annotated[Principal, Admin],
) -> ReviewerChangeOut:
    service = service_of(request)
    _own_reviewer(service, principal, reviewer_id)
    change = service.update_reviewer_roles(reviewer_id, list(body.roles), actor=principal.token_id)
    request.app.state.token_cache.clear()  # tokens for roles it lost were revoked
    return _change_out(change)


@router.post(
    "/reviewers/{reviewer_id}/retire",
    response_model=ReviewerChangeOut,
    summary="Retire a reviewer: it can no longer review; its id is never reused",
)
def retire_reviewer(
    request: Request,
    reviewer_id: Annotated[str, REVIEWER_ID],
    principal: Annotated[Principal, Admin],
) -> ReviewerChangeOut:
    service = service_of(request)
    _own_reviewer(service, principal, reviewer_id)
    changed = service.retire_reviewer(reviewer_id, actor=principal.token_id)
    request.app.state.token_cache.clear()  # its tokens were revoked with it
    return _change_out(changed)


# ----- the admin's own tokens ---------------------------------------------------------------


@router.get(
    "/tokens",
    response_model=list[TokenOut],
    responses=PAGED,
    summary="Your organisation's tokens, oldest first (never their secrets)",
)
def tokens(
    request: Request,
    response: Response,
    principal: Annotated[Principal, Admin],
    limit: LIMIT = DEFAULT_LIMIT,
    cursor: CURSOR = None,
) -> list[TokenOut]:
    infos = auth.list_tokens(service_of(request).store, principal.organisation)
    after = decode_cursor(cursor, (str, str))
    page, more = page_in_memory(infos, lambda i: (i.created_at, i.id), limit, after)
    link_next(request, response, more, limit)
    return [_token_out(i) for i in page]


@router.post(
    "/tokens",
    status_code=201,
    response_model=IssuedTokenOut,
    summary="Issue a token for your organisation (the secret is shown once)",
)
def create_token(
    request: Request, body: TokenIn, principal: Annotated[Principal, Admin]
) -> IssuedTokenOut:
    org = body.organisation or principal.organisation
    if org != principal.organisation:
        raise ForbiddenError(
            "an admin token may issue tokens only for its own organisation",
            field="organisation",
            fix="requester tokens for other organisations are issued by the operator with "
            "`carewall token create --org ORG --role requester`",
        )
    issued = issue_token(
        service_of(request), org, body.role, body.reviewer, actor=principal.token_id
    )
    return IssuedTokenOut(**_token_out(issued.info).model_dump(), secret=issued.secret)


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke one of your tokens")
def revoke_token(
    request: Request,
    token_id: Annotated[str, auth.TOKEN_ID],
    principal: Annotated[Principal, Admin],
) -> None:
    auth.revoke_token(
        service_of(request).store,
        token_id,
        actor=principal.token_id,
        organisation=principal.organisation,
    )
    request.app.state.token_cache.clear()


@router.get(
    "/log",
    response_model=list[AdminLogOut],
    responses=PAGED,
    summary="Your organisation's admin record: tokens and register changes, oldest first",
)
def log(
    request: Request,
    response: Response,
    principal: Annotated[Principal, Admin],
    limit: LIMIT = DEFAULT_LIMIT,
    cursor: CURSOR = None,
) -> list[AdminLogOut]:
    # The record is append-only, so its position is a stable sort key.
    numbered = list(enumerate(service_of(request).admin_log(principal.organisation)))
    after = decode_cursor(cursor, (int,))
    page, more = page_in_memory(numbered, lambda n: (n[0],), limit, after)
    link_next(request, response, more, limit)
    return [
        AdminLogOut(
            time=r.time,
            organisation=r.organisation,
            actor=r.actor,
            action=r.action,
            detail=r.detail,
        )
        for _, r in page
    ]


# ----- the local policy ---------------------------------------------------------------------


@router.get("/policy", response_model=PolicyOut)
def policy(request: Request, _: Annotated[Principal, Admin]) -> PolicyOut:
    service = service_of(request)
    return PolicyOut(policy=str(service.engine().policy_hash), text=service.local_policy())


@router.put("/policy", response_model=PolicyOut)
def set_policy(
    request: Request, body: PolicyIn, principal: Annotated[Principal, Admin]
) -> PolicyOut:
    service = service_of(request)
    # The policy applies to every holder on the instance: only the operator's admin sets it.
    if principal.organisation != service.operator():
        raise ForbiddenError(
            "only the admin of the organisation running this instance may change its policy",
            fix="ask the operator, or use `carewall policy set FILE` on the instance",
        )
    return PolicyOut(policy=service.set_local_policy(body.text), text=body.text)
