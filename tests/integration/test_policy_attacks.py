"""A careless or dishonest admin against the pledge: named attacks on the local policy.

Each local policy below tries to override, shadow or impersonate a pledge rule, or to cite
the immigration exemption. Each must be refused by ``carewall policy check`` (exit 2, one
line naming the problem) and by the service, which then writes no ``policy`` entry: the
policy in force and the public log are unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from carewall.cli import main
from carewall.errors import PolicyError
from carewall.service import Service

PERMIT = 'permit (principal, action == Action::"disclose", resource) when { false };\n'
CONSENT = '@legal_basis("consent")\n'


def _rule(rule_id: str, basis: str = "consent", effect: str = "permit") -> str:
    body = PERMIT if effect == "permit" else PERMIT.replace("permit", "forbid")
    return f'@id("{rule_id}")\n@legal_basis("{basis}")\n{body}'


ATTACKS: list[tuple[str, str, str]] = [
    ("pledge-id-redefined", _rule("pledge/never-nationality"), "pledge"),
    ("pledge-prefix-new-rule", _rule("pledge/extra"), "pledge"),
    ("pledge-upper-case", _rule("PLEDGE/never-nationality"), "not a rule id"),
    ("pledge-title-case", _rule("Pledge/no-immigration-recipient"), "not a rule id"),
    ("pledge-digit-one-for-l", _rule("p1edge/never-nationality"), "pledge"),
    ("pledge-zero-for-o-and-3-for-e", _rule("pl3dg3/x"), "pledge"),
    ("pledge-cyrillic-e", _rule("pl\u0435dge/never-nationality"), "not a rule id"),
    ("pledge-zero-width-space", _rule("pledge\u200b/never-nationality"), "not a rule id"),
    ("pledge-with-hyphen", _rule("pl-edge/x"), "pledge"),
    ("pledge-underscored", _rule("pledge_local/x"), "pledge"),
    ("pledge-forbid-shadow", _rule("pledge/no-immigration-purpose", effect="forbid"), "pledge"),
    ("id-trailing-newline", _rule("local/x\\n"), "not a rule id"),
    ("id-with-space", _rule("local/ x"), "not a rule id"),
    ("id-empty", _rule(""), "no @id"),
    ("id-reserved-default-deny", _rule("default-deny"), "reserved"),
    ("id-reserved-evaluation-error", _rule("evaluation-error"), "reserved"),
    ("id-used-twice", _rule("local/a") + _rule("local/a"), "twice"),
    (
        "permit-cites-immigration-exemption",
        _rule("local/ho", basis="dpa2018_sch2_p1_para4_immigration"),
        "immigration exemption",
    ),
    ("permit-basis-wrong-case", _rule("local/c", basis="Consent"), "legal_basis"),
    ("permit-basis-trailing-newline", _rule("local/c", basis="consent\\n"), "legal_basis"),
    ("permit-without-basis", f'@id("local/nb")\n{PERMIT}', "legal_basis"),
]


@pytest.mark.parametrize(("name", "text", "says"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_policy_check_refuses(name: str, text: str, says: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.cedar"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["policy", "check", str(path)])
    assert result.exit_code == 2, result.output
    assert says in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Service:
    tmp = tmp_path_factory.mktemp("policy-attacks")
    return Service.init(f"sqlite:///{tmp / 'p.db'}", None, "carewall.test/policy", tmp / "k")


@pytest.mark.parametrize(("name", "text", "says"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_service_refuses_and_logs_nothing(
    name: str, text: str, says: str, service: Service
) -> None:
    before = service.ledger.size()
    policy = service.engine().policy_hash
    with pytest.raises(PolicyError) as e:
        service.set_local_policy(text)
    assert says in e.value.human()
    assert service.ledger.size() == before
    assert service.engine().policy_hash == policy


def test_an_accepted_change_publishes_its_text(service: Service) -> None:
    text = _rule("local/nothing")
    before = service.ledger.size()
    digest = service.set_local_policy(text)
    (raw,) = service.ledger.entries(before, before + 1)
    entry = json.loads(raw)
    assert entry["kind"] == "policy" and entry["change"] == "update"
    assert entry["text"] == text and entry["policy"] == digest
    assert "local/nothing" in entry["rules"] and "pledge/never-nationality" in entry["rules"]


def test_a_policy_too_long_for_one_entry_is_refused(service: Service) -> None:
    before = service.ledger.size()
    long_text = _rule("local/long") + ("// padding\n" * 7000)
    with pytest.raises(Exception) as e:
        service.set_local_policy(long_text)
    assert "limit" in str(e.value) or "too long" in str(e.value)
    assert service.ledger.size() == before


def test_cli_policy_set_logs_the_text_and_refuses_an_attack(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'set.db'}"
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--db", db]).exit_code == 0
    svc = Service.open(db)
    before = svc.ledger.size()
    bad = tmp_path / "bad.cedar"
    bad.write_text(_rule("p1edge/x"), encoding="utf-8")
    result = runner.invoke(main, ["policy", "set", str(bad), "--db", db])
    assert result.exit_code == 2 and "pledge" in result.stderr
    assert svc.ledger.size() == before
    good = tmp_path / "good.cedar"
    good.write_text(_rule("local/nothing"), encoding="utf-8")
    result = runner.invoke(main, ["policy", "set", str(good), "--db", db])
    assert result.exit_code == 0, result.output
    (raw,) = svc.ledger.entries(before, before + 1)
    assert json.loads(raw)["text"] == good.read_text(encoding="utf-8")
    shown = runner.invoke(main, ["policy", "show", "--db", db])
    assert shown.stdout == good.read_text(encoding="utf-8")
    svc.close()


def test_only_the_operators_admin_sets_the_policy_over_http(tmp_path: Path) -> None:
    from api_support import api

    from carewall.api.admin import issue_token

    with api(f"sqlite:///{tmp_path / 'op.db'}", tmp_path) as (client, service, tokens):
        other = issue_token(service, "st-marys-primary", "admin").secret
        before = service.ledger.size()
        r = client.put(
            "/api/admin/policy",
            json={"text": _rule("local/nothing")},
            headers={"Authorization": f"Bearer {other}"},
        )
        assert r.status_code == 403, r.text
        assert service.ledger.size() == before
        r = client.put(
            "/api/admin/policy", json={"text": _rule("local/nothing")}, headers=tokens.auth("admin")
        )
        assert r.status_code == 200, r.text
