"""Bearer tokens for the HTTP API.

A token is a random secret shown once when issued; only its SHA-256 is stored, so a copy of
the database cannot be replayed against the API. Each token is bound to one organisation and
one role (and, for reviewers, to one reviewer id from the register), and the API derives
"who is asking" only from that binding, never from the request body. Issuing and revoking a
token is recorded in the private admin log (``svc_admin_log``): ids only, never a secret.
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
from sqlalchemy.engine import Connection

# ForbiddenError (403) lives in the one error tree; re-exported here for the API's callers.
from carewall.errors import AuthError, ForbiddenError, InputError, NotFoundError
from carewall.service.registry import record_admin
from carewall.storage.db import Store, driver_rows, placeholder

__all__ = [
    "REVIEWER_ROLES",
    "ROLES",
    "ForbiddenError",
    "IssuedToken",
    "Principal",
    "Role",
    "TokenInfo",
    "admit",
    "authenticate",
    "create_token",
    "list_tokens",
    "no_token",
    "require",
    "revoke_token",
    "token_digest",
    "unknown_token",
    "well_formed",
]

Role = Literal["requester", "release_reviewer", "appeal_reviewer", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
REVIEWER_ROLES: tuple[str, ...] = ("release_reviewer", "appeal_reviewer")
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

# A live token by its hash (the unique index makes it one probe).
_LIVE_TOKEN_SQL = (
    "SELECT id, organisation, role, reviewer FROM api_tokens "
    "WHERE hash = {p} AND revoked_at IS NULL"
)


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


def token_digest(secret: str) -> str:
    """The SHA-256 of a token secret, as stored (the secret itself never is)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create_token(
    store: Store,
    organisation: str,
    role: str,
    reviewer: str | None = None,
    *,
    actor: str = "cli",
    check: Callable[[Connection], None] | None = None,
) -> IssuedToken:
    """Issue a token; the issue is recorded in the admin log (ids only, never the secret).

    ``check`` runs first in the same transaction (the caller's register checks), so a
    token is never issued against a register that changed in between. ``actor`` is the
    admin token's id, or ``"cli"`` for the operator.
    """
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
            "only release_reviewer and appeal_reviewer tokens are bound to a reviewer",
            field="reviewer",
            fix=f"leave reviewer out for role {role}",
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
        if check is not None:
            check(conn)
        conn.execute(
            _tokens.insert().values(
                id=info.id,
                hash=token_digest(secret),
                organisation=organisation,
                role=role,
                reviewer=reviewer,
                created_at=info.created_at,
                revoked_at=None,
            )
        )
        detail = {"token": info.id, "role": role, "reviewer": reviewer}
        record_admin(conn, info.created_at, organisation, actor, "token_create", detail)
    return IssuedToken(info=info, secret=secret)


def well_formed(secret: str) -> bool:
    """Whether ``secret`` could be a token at all (checked before it is hashed)."""
    return secret.startswith(TOKEN_PREFIX) and len(secret) <= 200


def authenticate(store: Store, secret: str) -> Principal | None:
    """The principal a live token stands for, or None for an unknown or revoked token."""
    if not well_formed(secret):
        return None
    digest = token_digest(secret)
    # Looked up on every request (the unique index on ``hash`` makes it one probe), so a
    # revocation by any process takes effect at once.
    with store.read() as conn:
        # The driver's own cursor: this runs before every API call, and SQLAlchemy's
        # execution and result layers cost more than the one-row probe itself.
        found = driver_rows(conn, _LIVE_TOKEN_SQL.format(p=placeholder(conn)), (digest,))
    if not found:
        return None
    token_id, organisation, role, reviewer = found[0]
    return Principal(token_id=token_id, organisation=organisation, role=role, reviewer=reviewer)


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


def revoke_token(
    store: Store, token_id: str, *, actor: str = "cli", organisation: str | None = None
) -> TokenInfo:
    """Revoke a live token (only ``organisation``'s, when given); recorded in the admin log.

    A token of another organisation answers like one that does not exist.
    """
    now = _now()
    with store.write() as conn:
        query = sa.select(_tokens).where(_tokens.c.id == token_id)
        query = query.where(_tokens.c.revoked_at.is_(None))
        if organisation is not None:
            query = query.where(_tokens.c.organisation == organisation)
        row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(
                "no live token with that id" + (" at your organisation" if organisation else ""),
                field="id",
                fix="list tokens to see ids",
            )
        conn.execute(_tokens.update().where(_tokens.c.id == token_id).values(revoked_at=now))
        detail = {"token": token_id, "role": row.role, "reviewer": row.reviewer}
        record_admin(conn, now, row.organisation, actor, "token_revoke", detail)
    return TokenInfo(
        id=row.id,
        organisation=row.organisation,
        role=row.role,
        reviewer=row.reviewer,
        created_at=row.created_at,
        revoked_at=now,
    )


_bearer = HTTPBearer(auto_error=False, description="A carewall API token (`cw_…`).")


BEARER = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def no_token() -> AuthError:
    return AuthError(
        "a bearer token is required",
        fix="send 'Authorization: Bearer cw_…' with a token from 'carewall token create'",
    )


def unknown_token() -> AuthError:
    return AuthError("the token is unknown or revoked", fix="ask an administrator for a token")


def admit(principal: Principal, allowed: frozenset[str]) -> Principal:
    """``principal`` if its role is one of ``allowed``; ForbiddenError otherwise."""
    if principal.role not in allowed:
        raise ForbiddenError(
            "this token's role may not do this",
            fix="use a token with role: " + ", ".join(sorted(allowed)),
        )
    return principal


def _principal(request: Request, creds: BEARER) -> Principal:
    if creds is None:
        raise no_token()
    store: Store = request.app.state.store
    principal = authenticate(store, creds.credentials)
    if principal is None:
        raise unknown_token()
    return principal


def require(*roles: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting only tokens with one of ``roles``, read on every request."""
    allowed = frozenset(roles)

    # async: it does no I/O, so it runs on the event loop instead of taking a worker thread.
    async def dependency(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        return admit(principal, allowed)

    return dependency
