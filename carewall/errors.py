"""One error tree for carewall.

Every error says what is wrong and how to fix it, renders as one readable line in the CLI
and one JSON shape over HTTP, and never carries personal data (callers pass field names
and allowed values, not the submitted personal values).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "FIELD_PART_MAX",
    "AuthError",
    "CarewallError",
    "ConflictError",
    "ForbiddenError",
    "InputError",
    "LedgerError",
    "NotFoundError",
    "PolicyError",
    "RateLimitError",
    "ScanError",
    "StorageError",
    "UnavailableError",
    "VerificationError",
]

# A reported field's path is cut to this many characters a part: an unknown key is the
# caller's own text, and must not come back at any length.
FIELD_PART_MAX = 40


class CarewallError(Exception):
    """Root of every error carewall raises on purpose.

    ``field`` names the input field at fault (dotted path), ``fix`` says what to do.
    ``status`` is the HTTP status and ``exit_code`` the CLI exit code.
    """

    status: int = 400
    exit_code: int = 2
    code: str = "error"

    def __init__(self, message: str, *, field: str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.fix = fix

    def diagnostics(self) -> dict[str, Any]:
        """The one JSON shape every error takes over HTTP."""
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.fix is not None:
            out["fix"] = self.fix
        return out

    def human(self) -> str:
        """One readable line for the CLI."""
        where = f"{self.field}: " if self.field else ""
        fix = f" ({self.fix})" if self.fix else ""
        return f"error: {where}{self.message}{fix}"

    def __str__(self) -> str:
        return self.human()


class InputError(CarewallError):
    """Malformed or invalid input: a request document, register, entry or parameter."""

    status = 422
    exit_code = 2
    code = "invalid_input"


class PolicyError(CarewallError):
    """A policy set that is invalid, or that drops or alters the pledge."""

    status = 422
    exit_code = 2
    code = "invalid_policy"


class LedgerError(CarewallError):
    """A ledger operation that cannot be done as asked (bad proof parameters, sizes)."""

    status = 400
    exit_code = 2
    code = "ledger_error"


class VerificationError(CarewallError):
    """Something failed to verify: a proof, a signature, a stored log or a served log."""

    status = 400
    exit_code = 1
    code = "verification_failed"


class StorageError(CarewallError):
    """The database refused or failed an operation."""

    status = 500
    exit_code = 3
    code = "storage_error"


class UnavailableError(StorageError):
    """The database is unreachable; try again later. Nothing was half-recorded."""

    status = 503
    exit_code = 3
    code = "unavailable"


class ScanError(CarewallError):
    """A data source could not be scanned or purged as asked; nothing was changed."""

    status = 422
    exit_code = 3
    code = "scan_error"


class NotFoundError(CarewallError):
    status = 404
    exit_code = 2
    code = "not_found"


class ConflictError(CarewallError):
    """The action does not fit the current state (e.g. reviewing a withdrawn request)."""

    status = 409
    exit_code = 2
    code = "conflict"


class AuthError(CarewallError):
    status = 401
    exit_code = 2
    code = "unauthorised"


class ForbiddenError(AuthError):
    """Who is asking is known, but may not do this (a role they lack, another holder's data).

    A subclass of :class:`AuthError`, so callers that catch authentication failures catch it
    too, and the CLI exits with the same code; over HTTP it answers 403, not 401.
    """

    status = 403
    exit_code = AuthError.exit_code
    code = "forbidden"


class RateLimitError(CarewallError):
    """Too many failed attempts in a while; ``retry_after`` says how many seconds to wait."""

    status = 429
    exit_code = 2
    code = "too_many_requests"

    def __init__(
        self,
        message: str,
        *,
        retry_after: int,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message, field=field, fix=fix)
        self.retry_after = max(1, int(retry_after))
