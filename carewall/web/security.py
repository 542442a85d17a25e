"""Sign-in sessions and CSRF protection for the pages.

A reviewer or DPO signs in by pasting the token an administrator issued them; the page
exchanges it for a session: a random secret in a cookie (``Secure``, ``HttpOnly``,
``SameSite=Lax``, 8 hours at most) of which only the SHA-256 is stored. Every page load
checks the session *and* that its token is still live, so revoking a token signs its
holder out everywhere at once.

Every form carries a CSRF token and every POST is refused (403) without the right one:
for a signed-in user it is the session's own secret; for someone not signed in (the
subject's forms, the sign-in form) it is a random value also set in a ``SameSite=Strict``
cookie (the double-submit pattern), so another site can neither read nor forge it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi import Request, Response

from carewall.api.auth import TOKEN_PREFIX, Principal, authenticate
from carewall.errors import AuthError, CarewallError, ForbiddenError
from carewall.storage.db import Store

__all__ = [
    "CSRF_FIELD",
    "SESSION_HOURS",
    "WebUser",
    "check_csrf",
    "csrf_token",
    "current_user",
    "require_user",
    "set_anonymous_csrf_cookie",
    "sign_in",
    "sign_out",
]

SESSION_COOKIE = "carewall_session"
CSRF_COOKIE = "carewall_csrf"
CSRF_FIELD = "csrf_token"
SESSION_HOURS = 8
# Who may sign in to the pages: reviewers and the holder's DPO (an admin token).
PAGE_ROLES = ("release_reviewer", "appeal_reviewer", "admin")

_sessions = sa.table(
    "web_sessions",
    sa.column("hash", sa.String),
    sa.column("token", sa.String),
    sa.column("csrf", sa.String),
    sa.column("created_at", sa.String),
    sa.column("expires_at", sa.String),
)
_tokens = sa.table(
    "api_tokens",
    sa.column("id", sa.String),
    sa.column("organisation", sa.String),
    sa.column("role", sa.String),
    sa.column("reviewer", sa.String),
    sa.column("revoked_at", sa.String),
)


_UNSET = object()


class CsrfError(ForbiddenError):
    code = "csrf"


@dataclass(frozen=True)
class WebUser:
    """A signed-in person: the token's binding, and their session's CSRF secret."""

    principal: Principal
    csrf: str

    @property
    def role(self) -> str:
        return self.principal.role

    @property
    def organisation(self) -> str:
        return self.principal.organisation

    @property
    def reviewer(self) -> str | None:
        return self.principal.reviewer


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def sign_in(request: Request, response: Response, token: str) -> WebUser:
    """Exchange a live reviewer or admin token for a session cookie on ``response``."""
    token = token.strip()
    if not token:
        raise AuthError("enter your token", field="token", fix="paste the token you were given")
    principal = authenticate(_store(request), token) if token.startswith(TOKEN_PREFIX) else None
    if principal is None:
        raise AuthError(
            "that token is not recognised, or has been revoked",
            field="token",
            fix="check you copied all of it, or ask your administrator for a new one",
        )
    if principal.role not in PAGE_ROLES:
        raise ForbiddenError(
            "requester tokens cannot sign in to these pages",
            field="token",
            fix="requesting bodies use the API; reviewers and DPOs sign in here",
        )
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with _store(request).write() as conn:
        # Expired sessions go whenever anyone signs in, so the table cannot grow unbounded.
        conn.execute(_sessions.delete().where(_sessions.c.expires_at < _stamp(now)))
        conn.execute(
            _sessions.insert().values(
                hash=_digest(secret),
                token=principal.token_id,
                csrf=csrf,
                created_at=_stamp(now),
                expires_at=_stamp(now + timedelta(hours=SESSION_HOURS)),
            )
        )
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=SESSION_HOURS * 3600,
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
    )
    user = WebUser(principal=principal, csrf=csrf)
    request.state.web_user = user
    return user


def sign_out(request: Request, response: Response) -> None:
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        with _store(request).write() as conn:
            conn.execute(_sessions.delete().where(_sessions.c.hash == _digest(secret)))
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    request.state.web_user = None


def current_user(request: Request) -> WebUser | None:
    """The signed-in user, or None (no cookie, an unknown or expired session, a dead token)."""
    cached = getattr(request.state, "web_user", _UNSET)
    if cached is None or isinstance(cached, WebUser):
        return cached
    user = None
    secret = request.cookies.get(SESSION_COOKIE)
    if secret and len(secret) < 200:
        query = (
            sa.select(_tokens.c.id, _tokens.c.organisation, _tokens.c.role, _tokens.c.reviewer)
            .add_columns(_sessions.c.csrf)
            .select_from(_sessions.join(_tokens, _tokens.c.id == _sessions.c.token))
            .where(_sessions.c.hash == _digest(secret))
            .where(_sessions.c.expires_at > _stamp(datetime.now(UTC)))
            .where(_tokens.c.revoked_at.is_(None))
        )
        try:
            with _store(request).read() as conn:
                row = conn.execute(query).first()
        except CarewallError:
            row = None
        if row is not None:
            principal = Principal(
                token_id=row.id, organisation=row.organisation, role=row.role, reviewer=row.reviewer
            )
            user = WebUser(principal=principal, csrf=row.csrf)
    request.state.web_user = user
    return user


def csrf_token(request: Request) -> str:
    """The token this visitor's forms must carry (set as a cookie if they have none yet)."""
    user = current_user(request)
    if user is not None:
        return user.csrf
    existing = request.cookies.get(CSRF_COOKIE) or request.scope.get("carewall.set_csrf_cookie")
    if isinstance(existing, str) and 20 <= len(existing) <= 100:
        return existing
    fresh = secrets.token_urlsafe(32)
    request.scope["carewall.set_csrf_cookie"] = fresh
    return fresh


def set_anonymous_csrf_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(CSRF_COOKIE, value, path="/", secure=True, httponly=True, samesite="strict")


def check_csrf(request: Request, submitted: object) -> None:
    """Refuse a form post whose CSRF token is missing or wrong (403)."""
    user = current_user(request)
    expected = user.csrf if user is not None else request.cookies.get(CSRF_COOKIE)
    if (
        not expected
        or not isinstance(submitted, str)
        or not secrets.compare_digest(expected.encode(), submitted.encode())
    ):
        raise CsrfError(
            "this form has expired or did not come from this site",
            field=CSRF_FIELD,
            fix="go back, reload the page and send the form again",
        )


def require_user(request: Request, *roles: str) -> WebUser:
    """The signed-in user if their role is one of ``roles``; else 401 (sign in) or 403."""
    user = current_user(request)
    if user is None:
        raise AuthError(
            "you need to sign in to see this page",
            fix="sign in with the token your administrator gave you",
        )
    if roles and user.role not in roles:
        raise ForbiddenError(
            "your role cannot see this page",
            fix="sign in as " + " or ".join(r.replace("_", " ") for r in roles),
        )
    return user
