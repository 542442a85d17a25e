"""A reviewer who is known but may not act gets 403, an unknown one 401 (issue item 8).

``Service._check_reviewer`` guards reviews, appeal decisions and the deferral of notices.
Over HTTP a token normally keeps a reviewer inside their own holder and role, so the cases
below use tokens that have fallen out of step with the register (bound to a reviewer who
lacks the role, works elsewhere, or is not registered at all).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from api_support import HOLDER, api, example
from click.testing import CliRunner

import carewall.api.auth
import carewall.errors
from carewall.api.auth import ForbiddenError, create_token
from carewall.cli import main
from carewall.errors import AuthError
from carewall.service import Service

ERROR_KEYS = {"error", "message", "field", "fix"}


def test_forbidden_is_one_class_in_the_error_tree() -> None:
    assert carewall.api.auth.ForbiddenError is carewall.errors.ForbiddenError
    assert issubclass(ForbiddenError, AuthError)
    assert (ForbiddenError.status, ForbiddenError.code) == (403, "forbidden")
    assert (AuthError.status, AuthError.code) == (401, "unauthorised")
    assert ForbiddenError.exit_code == AuthError.exit_code


@pytest.mark.parametrize(
    ("reviewer", "forbidden"),
    [
        ("ig-whittington", True),  # a release reviewer, at another holder
        ("appeals-islington", True),  # at the holder, without the release role
        ("nobody-registered", False),  # not in the register: not authenticated
    ],
)
def test_review_by_the_wrong_reviewer(
    sqlite_url: str, tmp_path: Path, reviewer: str, forbidden: bool
) -> None:
    svc = Service.init(sqlite_url, None, "authz.test/log", tmp_path / "log.key")
    try:
        got = svc.submit(example())
        with pytest.raises(AuthError) as e:
            svc.review(got.id, reviewer, True)
        assert isinstance(e.value, ForbiddenError) is forbidden
        assert e.value.status == (403 if forbidden else 401)
        assert e.value.field == "reviewer" and e.value.fix
        assert reviewer not in e.value.human()
        assert svc.get(got.id).stage == "decided"
    finally:
        svc.close()


def test_deferral_decided_only_by_a_release_reviewer_at_the_holder(
    sqlite_url: str, tmp_path: Path
) -> None:
    svc = Service.init(sqlite_url, None, "authz.test/log", tmp_path / "log.key")
    try:
        got = svc.submit(example(prejudice=True))
        rec = svc.review(got.id, "dpo-islington", True)
        assert {n.status for n in rec.notices} == {"deferred"}
        with pytest.raises(ForbiddenError):
            svc.lift_deferral(got.id, "ig-whittington")
        with pytest.raises(AuthError) as e:
            svc.lift_deferral(got.id, "nobody-registered")
        assert not isinstance(e.value, ForbiddenError)
        assert svc.outbox() == []
        rec = svc.lift_deferral(got.id, "dpo-islington")
        assert {n.status for n in rec.notices} == {"sent"} and len(svc.outbox()) == 1
    finally:
        svc.close()


def test_http_403_for_a_known_reviewer_401_for_an_unknown(sqlite_url: str, tmp_path: Path) -> None:
    with api(sqlite_url, tmp_path) as (client, svc, _tokens):

        def bearer(role: str, reviewer: str) -> dict[str, str]:
            token = create_token(svc.store, HOLDER, role, reviewer)
            return {"Authorization": f"Bearer {token.secret}"}

        # an appeal decision by a token bound to a reviewer without the appeal role
        refused = svc.submit(example()).id
        svc.review(refused, "dpo-islington", False)
        svc.appeal(refused, "requester", "we need it")
        url = f"/api/requests/{refused}/appeal/decision"
        r = client.post(
            url, json={"uphold": True}, headers=bearer("appeal_reviewer", "dpo-islington")
        )
        assert r.status_code == 403, r.text
        assert r.json()["error"] == "forbidden" and r.json()["field"] == "reviewer"
        assert set(r.json()) <= ERROR_KEYS
        r = client.post(url, json={"uphold": True}, headers=bearer("appeal_reviewer", "ghost"))
        assert r.status_code == 401 and r.json()["error"] == "unauthorised"
        assert "ghost" not in r.text

        # a review by a token bound to another holder's reviewer
        live = svc.submit(example()).id
        url = f"/api/requests/{live}/review"
        headers = bearer("release_reviewer", "ig-whittington")
        r = client.post(url, json={"release": True}, headers=headers)
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
        assert svc.get(live).stage == "decided"


def test_cli_exit_code_is_the_auth_one(sqlite_url: str, tmp_path: Path) -> None:
    key = tmp_path / "log.key"
    svc = Service.init(sqlite_url, None, "authz.test/log", key)
    request_id = svc.submit(example()).id
    svc.close()
    runner = CliRunner()
    args = ["review", request_id, "--release", "--db", sqlite_url, "--key", str(key)]
    forbidden = runner.invoke(main, [*args, "--reviewer", "ig-whittington"])
    unknown = runner.invoke(main, [*args, "--reviewer", "nobody-registered"])
    assert forbidden.exit_code == unknown.exit_code == AuthError.exit_code
    assert "reviewer:" in forbidden.output and "Traceback" not in forbidden.output
