"""Bearer tokens for the HTTP API.

A token is a random secret shown once when issued; only its SHA-256 is stored, so a copy of
the database cannot be replayed against the API. Each token is bound to one organisation and
one role (and, for reviewers, to one reviewer id from the register), and the API derives
"who is asking" only from that binding, never from the request body.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

import sqlalchemy as sa
from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from carewall.errors import AuthError, InputError, NotFoundError
from carewall.storage.db import Store

__all__ = [
    "ROLES",
    "ForbiddenError",
    "IssuedToken",
    "Principal",
    "Role",
    "TokenInfo",
    "authenticate",
    "create_token",
    "list_tokens",
    "require",
    "revoke_token",
]

Role = Literal["requester", "release_reviewer", "appeal_reviewer", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
REVIEWER_ROLES = ("release_reviewer", "appeal_reviewer")
TOKEN_PREFIX = "cw_"
TOKEN_ID = Path(pattern=r"^[0-9a-f]{16}$", description="token id")

_tokens = sa.table(
    "api_tokens",
    sa.column("id", sa.String),
    sa.column("hash", sa.String),
    sa.column("organisation", sa.String),
    sa.column("role", sa.String),
    sa.column("reviewer", sa.String),
    sa.column("created_at", sa.String),
    sa.column("revoked_at", sa.String),
)

# Built once so its compiled form is reused on every request.
_LIVE_TOKEN = (
    sa.select(_tokens.c.id, _tokens.c.organisation, _tokens.c.role, _tokens.c.reviewer)
    .where(_tokens.c.hash == sa.bindparam("digest"))
    .where(_tokens.c.revoked_at.is_(None))
)


class ForbiddenError(AuthError):
    """A valid token whose role may not do this."""

    status = 403
    code = "forbidden"


@dataclass(frozen=True)
class Principal:
    """Who is calling: derived from the token's binding alone."""

    token_id: str
    organisation: str
    role: str
    reviewer: str | None


@dataclass(frozen=True)
class TokenInfo:
    id: str
    organisation: str
    role: str
    reviewer: str | None
    created_at: str
    revoked_at: str | None


@dataclass(frozen=True)
class IssuedToken:
    info: TokenInfo
    secret: str  # shown once; never stored


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create_token(
    store: Store, organisation: str, role: str, reviewer: str | None = None
) -> IssuedToken:
    """Issue a token. Callers check that the organisation and reviewer exist in the register."""
    if role not in ROLES:
        raise InputError("unknown role", field="role", fix="use one of: " + ", ".join(ROLES))
    if role in REVIEWER_ROLES and not reviewer:
        raise InputError(
            "a reviewer token must name the reviewer it acts for",
            field="reviewer",
            fix="pass the reviewer id from the organisations register",
        )
    if role not in REVIEWER_ROLES and reviewer:
        raise InputError(
            "only reviewer tokens are bound to a reviewer",
            field="reviewer",
            fix="leave reviewer out for this role",
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    info = TokenInfo(
        id=secrets.token_hex(8),
        organisation=organisation,
        role=role,
        reviewer=reviewer,
        created_at=_now(),
        revoked_at=None,
    )
    with store.write() as conn:
        conn.execute(
            _tokens.insert().values(
                id=info.id,
                hash=_hash(secret),
                organisation=organisation,
                role=role,
                reviewer=reviewer,
                created_at=info.created_at,
                revoked_at=None,
            )
        )
    return IssuedToken(info=info, secret=secret)


def authenticate(store: Store, secret: str) -> Principal | None:
    """The principal a live token stands for, or None for an unknown or revoked token."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    digest = _hash(secret)
    # Looked up on every request (the unique index on ``hash`` makes it one probe), so a
    # revocation by any process takes effect at once.
    with store.read() as conn:
        row = conn.execute(_LIVE_TOKEN, {"digest": digest}).first()
    if row is None:
        return None
    return Principal(
        token_id=row.id, organisation=row.organisation, role=row.role, reviewer=row.reviewer
    )


def list_tokens(store: Store, organisation: str | None = None) -> list[TokenInfo]:
    query = sa.select(_tokens).order_by(_tokens.c.created_at, _tokens.c.id)
    if organisation is not None:
        query = query.where(_tokens.c.organisation == organisation)
    with store.read() as conn:
        rows = conn.execute(query).all()
    return [
        TokenInfo(
            id=r.id,
            organisation=r.organisation,
            role=r.role,
            reviewer=r.reviewer,
            created_at=r.created_at,
            revoked_at=r.revoked_at,
        )
        for r in rows
    ]


def revoke_token(store: Store, token_id: str) -> None:
    with store.write() as conn:
        done = conn.execute(
            _tokens.update()
            .where(_tokens.c.id == token_id)
            .where(_tokens.c.revoked_at.is_(None))
            .values(revoked_at=_now())
        )
    if done.rowcount != 1:
        raise NotFoundError("no live token with that id", field="id", fix="list tokens to see ids")


_bearer = HTTPBearer(auto_error=False, description="A carewall API token (`cw_…`).")


def _principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if creds is None:
        raise AuthError(
            "a bearer token is required",
            fix="send 'Authorization: Bearer cw_…' with a token from 'carewall token create'",
        )
    store: Store = request.app.state.store
    principal = authenticate(store, creds.credentials)
    if principal is None:
        raise AuthError("the token is unknown or revoked", fix="ask an administrator for a token")
    return principal


def require(*roles: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting only tokens with one of ``roles``."""
    allowed = frozenset(roles)

    # async: it does no I/O, so it runs on the event loop instead of taking a worker thread.
    async def dependency(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        if principal.role not in allowed:
            raise ForbiddenError(
                "this token's role may not do this",
                fix="use a token with role: " + ", ".join(sorted(allowed)),
            )
        return principal

    return dependency
