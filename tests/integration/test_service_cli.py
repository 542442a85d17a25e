"""The whole disclosure lifecycle through the ``carewall`` command line (SQLite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from carewall.cli import main

DOC: dict[str, Any] = {
    "reference": "MPS-2026-000777",
    "requester": "met-police",
    "officer": {"name": "DC Lee Marchetti", "role": "Detective Constable"},
    "holder": "whittington-health",
    "purpose": "prevention_detection_of_crime",
    "legal_basis": "dpa2018_sch2_p1_para2_crime",
    "offence": "theft_act_1968_s1",
    "subjects": [{"ref": "9434765919", "is_child": False, "is_victim_or_witness": False}],
    "categories": ["name", "address"],
    "necessity": "Suspect in a burglary.",
}


def run(args: list[str], stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, args, input=stdin, catch_exceptions=False)


def test_lifecycle_through_the_cli(tmp_path: Path) -> None:
    db = ["--db", str(tmp_path / "cw.db"), "--key", str(tmp_path / "cw.key")]
    res = run(["init", *db, "--origin", "cli.test/log"])
    assert res.exit_code == 0, res.output
    assert "cli.test/log" in res.output
    assert run(["init", *db]).exit_code == 2  # never initialise twice

    req = tmp_path / "req.json"
    req.write_text(json.dumps(DOC))
    res = run(["submit", *db, str(req)])
    assert res.exit_code == 0, res.output
    first = json.loads(res.output)
    assert first["outcome"] == "review" and first["log_index"] == 2

    # stdin, and a Home Office request the pledge refuses
    ho = {**DOC, "requester": "home-office-ie", "purpose": "immigration_enforcement"}
    res = run(["submit", *db, "-"], stdin=json.dumps(ho))
    refused = json.loads(res.output)
    assert refused["outcome"] == "refused"

    # reviewer at another organisation, or without the role: a one-line refusal, exit 2
    res = run(["review", first["id"], "--reviewer", "dpo-st-marys", "--release", *db])
    assert res.exit_code == 2 and res.output.startswith("error: reviewer:")
    assert len(res.output.strip().splitlines()) == 1

    res = run(["review", first["id"], "--reviewer", "ig-whittington", "--release", *db])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["outcome"] == "released" and out["released"] == ["address", "name"]

    res = run(["appeal", refused["id"], "--by", "requester", "--grounds", "urgent", *db])
    assert json.loads(res.output)["stage"] == "appealed"
    res = run(
        [
            "appeal",
            refused["id"],
            "--by",
            "requester",
            "--grounds",
            "x",
            "--decide",
            "caldicott-whittington",
            *db,
        ]
    )
    assert json.loads(res.output)["stage"] == "upheld"

    third = json.loads(run(["submit", *db, str(req)]).output)
    res = run(["withdraw", third["id"], "--by", "met-police", *db])
    assert json.loads(res.output)["stage"] == "withdrawn"

    res = run(["requests", "--db", str(tmp_path / "cw.db"), "--json"])
    rows = [json.loads(line) for line in res.output.splitlines()]
    assert sorted((r["stage"], r["outcome"]) for r in rows) == [
        ("reviewed", "released"),
        ("upheld", "refused"),
        ("withdrawn", "review"),
    ]
    res = run(["requests", "--db", str(tmp_path / "cw.db")])
    assert res.exit_code == 0 and "3 requests" in res.output
    # every id appears whole, even on a narrow terminal, so it can be copied into `review`
    for r in rows:
        assert r["id"] in res.output
    # the table shows ids and codes, never the subject's ref or the officer's name
    assert "9434765919" not in res.output and "Marchetti" not in res.output


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    db = ["--db", str(tmp_path / "cw.db"), "--key", str(tmp_path / "cw.key")]
    assert run(["init", *db]).exit_code == 0
    res = run(["submit", *db, "-"], stdin=json.dumps({**DOC, "holder": "nowhere"}))
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [res.output.strip()]
    assert "holder" in res.output
    res = run(["submit", *db, "-"], stdin="{")
    assert res.exit_code == 2 and "request" in res.output
    res = run(["review", "r-none", "--reviewer", "ig-whittington", "--refuse", *db])
    assert res.exit_code == 2 and "no such request" in res.output
    res = run(["submit", "--db", str(tmp_path / "other.db"), "-"], stdin=json.dumps(DOC))
    assert res.exit_code == 2 and "carewall init" in res.output
