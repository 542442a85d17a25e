"""The data protection officer's pages, under ``/dpo/``: one router for the app to include.

A DPO signs in with an admin token of their organisation and sees only what that
organisation holds, scoped and redacted as the admin API does it
(:mod:`carewall.web.dpo_common`):

- ``/dpo/requests`` the register of requests, searched and paged; ``/dpo/requests.csv``
  the same search as a CSV file; ``/dpo/requests/{id}`` one request's record and events
  (:mod:`carewall.web.dpo_requests`, :mod:`carewall.web.dpo_export`);
- ``/dpo/notices`` the notices and their printable letters (:mod:`carewall.web.dpo_notices`);
- ``/dpo/agreements`` the data-sharing agreements and what each still owes, with a form to
  withdraw one (:mod:`carewall.web.dpo_agreements`);
- ``/dpo/register`` organisations and the DPO's own reviewers (:mod:`carewall.web.dpo_register`).
"""

from __future__ import annotations

from fastapi import APIRouter

from carewall.web import dpo_agreements, dpo_notices, dpo_register, dpo_requests

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
for _part in (
    dpo_requests.router,
    dpo_notices.router,
    dpo_agreements.router,
    dpo_register.router,
):
    router.include_router(_part)
