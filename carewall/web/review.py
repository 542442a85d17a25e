"""The reviewers' pages: the queue, a request, the decision on it, appeals and deferrals.

Each page does what the JSON API does for the same capability, through the same service
methods and with the same scoping (``carewall/api/review.py``, ``carewall/api/deferrals.py``):

- ``GET /review``: what waits for the signed-in reviewer (:mod:`.review_queue`);
- ``GET /review/requests/{id}``: the request, its decision and the people it names, with the
  form to decide it; ``GET …/decided``: the outcome (:mod:`.review_request`);
- ``POST /review/requests/{id}``: release or refuse; ``POST …/appeal``: decide an appeal
  (:mod:`.review_decide`);
- ``GET``/``POST /review/requests/{id}/deferral``: lift or renew a deferral of the notices
  (:mod:`.review_deferral`).
"""

from __future__ import annotations

from fastapi import APIRouter

from carewall.web import review_decide, review_deferral, review_queue, review_request

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
for _part in (review_queue, review_request, review_decide, review_deferral):
    router.include_router(_part.router)
