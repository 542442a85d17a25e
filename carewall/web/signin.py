"""Staff sign-in and sign-out: a reviewer or DPO token exchanged for a session cookie."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carewall.errors import CarewallError
from carewall.web.forms import form_of, problem
from carewall.web.security import CSRF_FIELD, check_csrf, current_user, sign_in, sign_out
from carewall.web.templating import render

__all__ = ["landing", "router"]

router = APIRouter(include_in_schema=False)


def landing(role: str) -> str:
    """Where a signed-in person starts: reviewers at their queue, a DPO at the register."""
    return "/dpo/requests" if role == "admin" else "/review"


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request) -> Response:
    user = current_user(request)
    if user is not None:
        return RedirectResponse(landing(user.role), status_code=303)
    return render(request, "signin.html", {"title": "Sign in"})


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in_post(request: Request) -> Response:
    form = await form_of(request)
    try:
        check_csrf(request, form.get(CSRF_FIELD))
        redirect = RedirectResponse("/", status_code=303)
        user = sign_in(request, redirect, form.get("token", ""))
    except CarewallError as e:
        return render(
            request,
            "signin.html",
            {"title": "Sign in", "errors": [problem(e, "token")]},
            status=e.status,
        )
    redirect.headers["location"] = landing(user.role)
    return redirect


@router.post("/sign-out")
async def sign_out_post(request: Request) -> Response:
    form = await form_of(request)
    check_csrf(request, form.get(CSRF_FIELD))  # another site must not sign people out
    response = RedirectResponse("/", status_code=303)
    sign_out(request, response)
    return response


@router.get("/sign-out", response_class=HTMLResponse)
def sign_out_page(request: Request) -> Response:
    return render(request, "signout.html", {"title": "Sign out"})
