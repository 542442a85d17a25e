"""The lifecycle table and the release plan: pure, no database."""

from __future__ import annotations

import pytest

from carewall.errors import ConflictError
from carewall.service.lifecycle import TRANSITIONS, Action, Outcome, Stage, next_stage
from carewall.service.release import plan_release

ALLOWED = {
    ("received", "review", Action.DECIDE): Stage.DECIDED,
    ("decided", "review", Action.REVIEW): Stage.REVIEWED,
    ("decided", "refused", Action.APPEAL_REQUESTER): Stage.APPEALED,
    ("reviewed", "refused", Action.APPEAL_REQUESTER): Stage.APPEALED,
    ("reviewed", "released", Action.APPEAL_SUBJECT): Stage.APPEALED,
    ("appealed", "released", Action.UPHOLD): Stage.UPHELD,
    ("appealed", "refused", Action.OVERTURN): Stage.OVERTURNED,
    ("decided", "review", Action.WITHDRAW): Stage.WITHDRAWN,
}


@pytest.mark.parametrize(("state", "expected"), list(ALLOWED.items()))
def test_allowed(state: tuple[str, str, Action], expected: Stage) -> None:
    assert next_stage(*state) == expected


REFUSED = [
    ("decided", "refused", Action.REVIEW),  # the policy refused: no human can release
    ("reviewed", "released", Action.REVIEW),  # reviewed once only
    ("reviewed", "released", Action.APPEAL_REQUESTER),
    ("reviewed", "refused", Action.APPEAL_SUBJECT),
    ("reviewed", "released", Action.WITHDRAW),  # data already sent
    ("upheld", "refused", Action.APPEAL_REQUESTER),  # one appeal
    ("withdrawn", "review", Action.REVIEW),
    ("decided", "review", Action.UPHOLD),
    ("nonsense", "review", Action.REVIEW),
]


@pytest.mark.parametrize("state", REFUSED)
def test_refused(state: tuple[str, str, Action]) -> None:
    with pytest.raises(ConflictError):
        next_stage(*state)


def test_every_final_stage_is_final_but_to_a_released_subjects_appeal() -> None:
    """Withdrawn is final; an appeal decided is final too, except that while the outcome is
    a release, each of its subjects may still appeal it (once: the service checks who)."""
    finals = {Stage.UPHELD, Stage.OVERTURNED, Stage.WITHDRAWN}
    leaving = {k: v for k, v in TRANSITIONS.items() if k[0] in finals}
    assert leaving == {
        (Stage.UPHELD, Outcome.RELEASED, Action.APPEAL_SUBJECT): Stage.APPEALED,
        (Stage.OVERTURNED, Outcome.RELEASED, Action.APPEAL_SUBJECT): Stage.APPEALED,
    }
    assert all(isinstance(k[1], Outcome | None) for k in TRANSITIONS)


def _d(
    outcome: str, cats: dict[str, str], groups: list[dict[str, object]] | None = None
) -> dict[str, object]:
    out: dict[str, object] = {
        "outcome": outcome,
        "categories": {c: {"outcome": o, "rules": []} for c, o in cats.items()},
    }
    if groups is not None:
        out["groups"] = groups
    return out


def test_plan_intersects_stored_and_fresh() -> None:
    stored = _d("review", {"name": "review", "address": "review", "nationality": "refused"})
    fresh = _d("review", {"name": "review", "address": "refused"})
    assert plan_release(stored, fresh, 2) == [([0, 1], ["name"])]


def test_plan_per_group_and_fail_closed() -> None:
    groups = [
        {"subjects": [0], "categories": {"name": {"outcome": "review"}}},
        {"subjects": [1], "categories": {"name": {"outcome": "refused"}}},
    ]
    d = _d("review", {"name": "review"}, groups)
    assert plan_release(d, d, 3) == [([0], ["name"])]  # subject 2 in no group: nothing
    assert plan_release(_d("refused", {"name": "review"}), d, 1) == []
    assert plan_release(_d("review", {"name": "maybe"}), _d("review", {"name": "maybe"}), 1) == []
