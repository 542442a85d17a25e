"""The request lifecycle as data: which action may move a request from which state.

A request's state is a pair (stage, outcome). ``stage`` is where it is in the process;
``outcome`` is what currently stands (``refused``, ``review`` or ``released``). Anything not
in :data:`TRANSITIONS` is refused with a :class:`ConflictError`, so a new action has to be
written down here before any code can take it.

    received ─decide→ decided(refused | review) ─review→ reviewed(released | refused)
    decided(refused) / reviewed(refused) ─appeal by requester→ appealed
    reviewed(released) ─appeal by subject→ appealed ─→ upheld | overturned
    appealed / upheld / overturned (released) ─appeal by another subject→ appealed
    received / decided ─withdraw→ withdrawn
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from carewall.errors import ConflictError

__all__ = ["TRANSITIONS", "Action", "Outcome", "Stage", "next_stage"]


class Stage(StrEnum):
    RECEIVED = "received"
    DECIDED = "decided"
    REVIEWED = "reviewed"
    APPEALED = "appealed"
    UPHELD = "upheld"
    OVERTURNED = "overturned"
    WITHDRAWN = "withdrawn"


class Outcome(StrEnum):
    REFUSED = "refused"
    REVIEW = "review"
    RELEASED = "released"
    WITHDRAWN = "withdrawn"


class Action(StrEnum):
    DECIDE = "decide"
    REVIEW = "review"
    APPEAL_REQUESTER = "appeal_requester"
    APPEAL_SUBJECT = "appeal_subject"
    UPHOLD = "uphold"
    OVERTURN = "overturn"
    WITHDRAW = "withdraw"


ANY: Final = None

# (stage, outcome or ANY, action) -> next stage
TRANSITIONS: Final[dict[tuple[Stage, Outcome | None, Action], Stage]] = {
    (Stage.RECEIVED, ANY, Action.DECIDE): Stage.DECIDED,
    (Stage.DECIDED, Outcome.REVIEW, Action.REVIEW): Stage.REVIEWED,
    (Stage.DECIDED, Outcome.REFUSED, Action.APPEAL_REQUESTER): Stage.APPEALED,
    (Stage.REVIEWED, Outcome.REFUSED, Action.APPEAL_REQUESTER): Stage.APPEALED,
    (Stage.REVIEWED, Outcome.RELEASED, Action.APPEAL_SUBJECT): Stage.APPEALED,
    # each subject of a release appeals it once (carewall.service.lodging checks who):
    # behind another subject's appeal, after one upheld, or after a requester's appeal
    # that released
    (Stage.APPEALED, Outcome.RELEASED, Action.APPEAL_SUBJECT): Stage.APPEALED,
    (Stage.UPHELD, Outcome.RELEASED, Action.APPEAL_SUBJECT): Stage.APPEALED,
    (Stage.OVERTURNED, Outcome.RELEASED, Action.APPEAL_SUBJECT): Stage.APPEALED,
    (Stage.APPEALED, ANY, Action.UPHOLD): Stage.UPHELD,
    (Stage.APPEALED, ANY, Action.OVERTURN): Stage.OVERTURNED,
    (Stage.RECEIVED, ANY, Action.WITHDRAW): Stage.WITHDRAWN,
    (Stage.DECIDED, ANY, Action.WITHDRAW): Stage.WITHDRAWN,
}

_EXPLAIN: Final[dict[Action, str]] = {
    Action.REVIEW: "only a request the policy sent for review, not yet reviewed, can be reviewed",
    Action.APPEAL_REQUESTER: "the requester may appeal a refusal once",
    Action.APPEAL_SUBJECT: "each subject may appeal a release once",
    Action.UPHOLD: "only a lodged appeal can be decided",
    Action.OVERTURN: "only a lodged appeal can be decided",
    Action.WITHDRAW: "a request can be withdrawn only before it is reviewed",
    Action.DECIDE: "a request is decided once, when received",
}


def next_stage(stage: str, outcome: str, action: Action) -> Stage:
    """The stage ``action`` leads to from (stage, outcome), or a ConflictError."""
    try:
        st, oc = Stage(stage), Outcome(outcome)
    except ValueError as e:
        raise ConflictError("the request is in an unknown state") from e
    for key in ((st, oc, action), (st, ANY, action)):
        if key in TRANSITIONS:
            return TRANSITIONS[key]
    raise ConflictError(
        f"cannot {action.value.replace('_', ' ')} a request that is {st.value} ({oc.value})",
        fix=_EXPLAIN[action],
    )
