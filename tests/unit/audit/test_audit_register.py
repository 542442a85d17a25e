"""The register as the log states it (contract §2), replayed entry by entry."""

from __future__ import annotations

from typing import Any

from carewall.audit.register import RegisterReplay


def org(org_id: str, name: str, function: str, change: str = "add") -> dict[str, Any]:
    return {"id": org_id, "name": name, "function": function, "change": change}


def rev(rev_id: str, organisation: str, roles: list[str], change: str = "add") -> dict[str, Any]:
    return {"id": rev_id, "organisation": organisation, "roles": roles, "change": change}


def replay() -> RegisterReplay:
    r = RegisterReplay()
    assert r.organisation(org("met-police", "Metropolitan Police Service", "police"), 1) == []
    assert r.organisation(org("st-marys", "St Mary's Primary School", "education"), 2) == []
    assert r.reviewer(rev("dpo", "st-marys", ["release_reviewer"]), 3) == []
    return r


def test_an_immigration_name_needs_the_immigration_function() -> None:
    r = replay()
    for n, name in enumerate(["Home Office Immigration Enforcement", "UK Border Force", "VISAS"]):
        [problem] = r.organisation(org(f"body-{n}", name, "police"), 10 + n)
        assert "names immigration enforcement" in problem
    assert r.is_immigration("body-0")  # counted as such whatever the log claims
    assert r.organisation(org("hoie", "Immigration Enforcement North",
                              "immigration_enforcement"), 20) == []  # fmt: skip
    # under the police body's name, though, it is a finding (one name, one side)
    [clash] = r.organisation(org("hoie-2", "Home Office Immigration Enforcement",
                                 "immigration_enforcement"), 21)  # fmt: skip
    assert "has the name of 'body-0'" in clash


def test_an_id_is_never_used_twice_not_even_after_retirement() -> None:
    r = replay()
    [again] = r.organisation(org("met-police", "Metropolitan Police Service", "local_authority"), 5)
    assert "again (first added at entry 1)" in again
    assert (
        r.organisation(org("met-police", "Metropolitan Police Service", "police", "retire"), 6)
        == []
    )
    assert not r.is_active("met-police")
    [reused] = r.organisation(org("met-police", "Metropolitan Police Service", "police"), 7)
    assert "again" in reused


def test_a_retirement_must_match_what_was_added() -> None:
    r = replay()
    [p] = r.organisation(org("met-police", "Met", "police", "retire"), 5)
    assert "other than those it was added with at entry 1" in p
    [p] = r.organisation(org("nobody", "Nobody", "police", "retire"), 6)
    assert "not active" in p
    [p] = r.reviewer(rev("dpo", "st-marys", ["appeal_reviewer"], "retire"), 7)
    assert "roles other than those of entry 3" in p


def test_reviewers_stay_at_their_organisation() -> None:
    r = replay()
    [p] = r.reviewer(rev("new", "nowhere", ["release_reviewer"]), 5)
    assert "not an active organisation" in p
    [p] = r.reviewer(rev("dpo", "met-police", ["appeal_reviewer"], "update"), 6)
    assert "never moves" in p
    assert r.reviewer(rev("dpo", "st-marys", ["appeal_reviewer"], "update"), 7) == []
    assert "does not hold the release_reviewer role (entry 7)" in str(
        r.check_reviewer("dpo", "st-marys", "release_reviewer")
    )
    assert "works for 'st-marys'" in str(r.check_reviewer("dpo", "met-police", "appeal_reviewer"))
    assert r.check_reviewer("dpo", "st-marys", "appeal_reviewer") is None


def test_the_engine_sees_one_register_object_until_the_register_changes() -> None:
    r = replay()
    first = r.register()
    assert r.register() is first
    assert set(first.organisations) == {"met-police", "st-marys"}
    r.organisation(org("met-police", "Metropolitan Police Service", "police", "retire"), 5)
    second = r.register()
    assert second is not first
    assert set(second.organisations) == {"st-marys"}
    again = RegisterReplay.from_json(r.to_json())
    assert again.to_json() == r.to_json()
