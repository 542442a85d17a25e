"""``/dpo/register``: the organisations register and the DPO's own reviewers, read-only.

Scoped as the admin API scopes it: every organisation, retired ones included (the register
is public: ``GET /api/admin/organisations``), and only the DPO's own organisation's
reviewers, by id and roles, never their names (``GET /api/admin/reviewers``). Changes are
made by the operator with ``carewall register …``, and each is a public log entry.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from carewall.web.dpo_common import dpo_user, organisation, page, service_of

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/dpo/register", response_class=HTMLResponse)
def register_page(request: Request) -> HTMLResponse:
    user = dpo_user(request)
    service = service_of(request)
    register = service.register()
    orgs = sorted(
        [*register.organisations.values(), *register.retired_organisations.values()],
        key=lambda o: (o.retired_at is not None, o.name.casefold(), o.id),
    )
    reviewers = sorted(
        (
            r
            for r in [*register.reviewers.values(), *register.retired_reviewers.values()]
            if r.organisation == user.organisation
        ),
        key=lambda r: (r.retired_at is not None, r.id),
    )
    context = {
        "title": "Organisations and reviewers",
        "organisation": organisation(service, user.organisation),
        "organisations": [
            {"id": o.id, "name": o.name, "function": o.function, "retired_at": o.retired_at}
            for o in orgs
        ],
        "reviewers": [
            {"id": r.id, "roles": sorted(r.roles), "retired_at": r.retired_at} for r in reviewers
        ],
    }
    return page(request, "dpo_register.html", context)
