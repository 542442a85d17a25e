"""Reading posted forms safely, and turning errors into the design system's error summary."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from carewall.errors import CarewallError

__all__ = ["MAX_FIELD", "form_of", "problem"]

MAX_FIELD = 20_000  # characters; a field over this is cut, and the service refuses it


async def form_of(request: Request) -> dict[str, str]:
    """The posted form as plain strings (the last value of a repeated field wins).

    Anything that is not a url-encoded or multipart form (or holds files) counts as empty,
    so a malformed post gets the page's ordinary "there is a problem" answer, never a 500.
    """
    try:
        form = await request.form(max_files=0, max_fields=200)
    except Exception:
        return {}
    out: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            out[key[:100]] = value[:MAX_FIELD]
    return out


def problem(e: CarewallError, default_field: str) -> dict[str, Any]:
    """One error-summary item: the message, linking to the field it is about."""
    diag = e.diagnostics()
    field = diag.get("field") or default_field
    text = str(diag.get("message", "something went wrong"))
    fix = diag.get("fix")
    text = text[:1].upper() + text[1:]
    if fix:
        text = f"{text}: {fix}"
    return {"text": text, "href": f"#{_anchor(str(field))}"}


def _anchor(field: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in field)
    return safe or "main-content"
