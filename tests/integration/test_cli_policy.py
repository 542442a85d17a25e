"""``carewall decide``, ``policy check`` and ``examples`` through the real command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from carewall.cli import main, out_console
from carewall.errors import CarewallError
from carewall.policy import DEFAULT_REGISTER_PATH, Engine

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def wide() -> Any:
    # Rich sizes the shared console once, at import; widen it so table cells do not wrap.
    old = out_console.width
    out_console.width = 300
    yield
    out_console.width = old


def _req(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "reference": "MPS-2026-000123",
        "requester": "met-police",
        "holder": "islington-council",
        "purpose": "prevention_detection_of_crime",
        "legal_basis": "dpa2018_sch2_p1_para2_crime",
        "offence": "theft_act_1968_s1",
        "subjects": [{"ref": "9434765919", "is_child": False, "is_victim_or_witness": False}],
        "categories": ["name", "address"],
    }
    base.update(fields)
    return base


def test_decide_from_stdin_prints_contract_decision() -> None:
    result = CliRunner().invoke(main, ["decide", "-"], input=json.dumps(_req()))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {"outcome", "categories", "rules", "reasons", "policy"}
    assert doc["outcome"] == "review"
    assert doc["policy"] == Engine.load().policy_hash


def test_decide_refusal_from_file(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_req(requester="home-office-ie", categories=["address"])))
    result = CliRunner().invoke(main, ["decide", str(path)])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["outcome"] == "refused"
    assert doc["categories"]["address"]["rules"] == ["pledge/no-immigration-recipient"]


@pytest.mark.parametrize(
    ("stdin", "args", "needle"),
    [
        pytest.param(
            json.dumps(_req(purpose="immigraton_control")),
            [],
            "purpose: unknown purpose 'immigraton_control'",
            id="typo",
        ),
        pytest.param(b"\xff\xfe{", [], "not valid UTF-8", id="not-utf8"),
        pytest.param("{", [], "not valid JSON", id="not-json"),
        pytest.param(
            json.dumps(_req(subjects=[])), [], "subjects: must not be empty", id="empty-subjects"
        ),
        pytest.param("{}", ["--orgs", "/nonexistent/orgs.toml"], "cannot read", id="no-orgs"),
        pytest.param("{}", ["--policy", "/nonexistent/p.cedar"], "cannot read", id="no-policy"),
    ],
)
def test_decide_invalid_input_is_one_line_exit_2(
    stdin: str | bytes, args: list[str], needle: str
) -> None:
    result = CliRunner().invoke(main, ["decide", *args, "-"], input=stdin)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert needle in lines[0]
    assert "Traceback" not in result.output and "9434765919" not in result.stderr


def test_decide_missing_file() -> None:
    result = CliRunner().invoke(main, ["decide", "/nonexistent/request.json"])
    assert result.exit_code == 2
    assert "request: cannot read" in result.stderr


def test_decide_with_local_policy_and_register(tmp_path: Path) -> None:
    policy = tmp_path / "local.cedar"
    policy.write_text(
        '@id("local/all-research") @legal_basis("statutory_gateway")\n'
        'permit (principal, action == Action::"disclose", resource)\n'
        'when { context.purpose == Purpose::"research" };\n'
    )
    orgs = tmp_path / "orgs.toml"
    orgs.write_text(
        '[[organisation]]\nid = "uni"\nname = "A University"\nfunction = "other_public_body"\n'
        '[[organisation]]\nid = "school"\nname = "A School"\nfunction = "education"\n'
    )
    req = _req(
        requester="uni",
        holder="school",
        purpose="research",
        legal_basis="statutory_gateway",
        categories=["attendance", "nationality"],
    )
    result = CliRunner().invoke(
        main, ["decide", "--orgs", str(orgs), "--policy", str(policy)], input=json.dumps(req)
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["categories"]["attendance"] == {"outcome": "review", "rules": ["local/all-research"]}
    assert doc["categories"]["nationality"]["rules"] == ["pledge/never-nationality"]


def test_policy_check_lists_rules(wide: None) -> None:
    default = ROOT / "carewall" / "policy" / "default.cedar"
    result = CliRunner().invoke(main, ["policy", "check", str(default)], terminal_width=250)
    assert result.exit_code == 0, result.output
    for rule_id in Engine.load().rule_ids:
        assert rule_id in result.stdout
    assert "valid" in result.stdout


def test_policy_check_refuses_pledge_override(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cedar"
    bad.write_text('@id("pledge/never-nationality") permit (principal, action, resource);\n')
    result = CliRunner().invoke(main, ["policy", "check", str(bad)])
    assert result.exit_code == 2
    assert "redefines the pledge rule 'pledge/never-nationality'" in result.stderr


def test_policy_check_refuses_enum_typo(tmp_path: Path) -> None:
    bad = tmp_path / "typo.cedar"
    bad.write_text(
        '@id("local/t") @legal_basis("consent")\n'
        'permit (principal, action, resource) when { resource == Category::"adress" };\n'
    )
    result = CliRunner().invoke(main, ["policy", "check", str(bad)])
    assert result.exit_code == 2
    assert "adress" in result.stderr and "local/t" in result.stderr


def test_examples_table(wide: None) -> None:
    result = CliRunner().invoke(main, ["examples", str(EXAMPLES)], terminal_width=300)
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in EXAMPLES.glob("*.json"))
    assert len(files) >= 10
    for name in files:
        assert name in result.stdout
    assert "refused" in result.stdout and "review" in result.stdout
    assert "pledge/no-immigration-recipient" in result.stdout


def test_examples_outcomes_match_their_names() -> None:
    # Immigration tracing examples are refused; legitimate duties reach review.
    runner = CliRunner()
    for path in sorted(EXAMPLES.glob("*.json")):
        out = runner.invoke(
            main, ["decide", "--orgs", str(EXAMPLES / "organisations.toml"), str(path)]
        )
        assert out.exit_code == 0, (path.name, out.stderr)
        number = int(path.name[:2])
        assert json.loads(out.stdout)["outcome"] == ("refused" if number <= 6 else "review")


def test_decide_prints_what_the_service_decides() -> None:
    # ``decide`` reads requests without pydantic (parse_document); the service reads them
    # with the models (parse_request). Same decision for every example, same error for a
    # refused document (tests/unit/policy/test_document.py compares the readers at length).
    from carewall.policy import load_register, parse_request

    register = load_register(EXAMPLES / "organisations.toml")
    engine = Engine.load()
    runner = CliRunner()
    for path in sorted(EXAMPLES.glob("*.json")):
        out = runner.invoke(
            main, ["decide", "--orgs", str(EXAMPLES / "organisations.toml"), str(path)]
        )
        assert out.exit_code == 0, (path.name, out.stderr)
        want = engine.decide(parse_request(path.read_bytes(), register), register).to_json()
        assert json.loads(out.stdout) == want, path.name
    bad = json.dumps(_req(subjects=[{"ref": "x\u0000", "is_child": False}]))
    out = runner.invoke(main, ["decide", "-"], input=bad)
    assert out.exit_code == 2
    with pytest.raises(CarewallError) as info:
        parse_request(bad, load_register(DEFAULT_REGISTER_PATH))
    assert out.stderr.strip() == info.value.human()


def test_examples_invalid_file_exits_2(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "organisations.toml", tmp_path)
    shutil.copy(EXAMPLES / "07-police-theft-suspect.json", tmp_path)
    (tmp_path / "broken.json").write_text('{"reference": "x"}')
    result = CliRunner().invoke(main, ["examples", str(tmp_path)], terminal_width=300)
    assert result.exit_code == 2
    assert "broken.json" in result.stderr and "is required" in result.stderr


def test_real_binary_exit_code(tmp_path: Path) -> None:
    import subprocess

    exe = ROOT / ".venv" / "bin" / "carewall"
    if not exe.exists():
        pytest.skip("no installed carewall script")
    proc = subprocess.run(
        [str(exe), "decide", "-"], input=b'{"purpose": 1}', capture_output=True, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.decode().count("\n") == 1 and b"Traceback" not in proc.stderr
