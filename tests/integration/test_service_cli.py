"""The whole disclosure lifecycle through the ``carewall`` command line (SQLite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from carewall.cli import main
from carewall.service import Service

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

    svc = Service.open(str(tmp_path / "cw.db"), tmp_path / "cw.key")
    registered = svc.ledger.size()  # the pledge policy, then the register's entries

    req = tmp_path / "req.json"
    req.write_text(json.dumps(DOC))
    res = run(["submit", *db, str(req)])
    assert res.exit_code == 0, res.output
    first = json.loads(res.output)
    # entries: request, then its decision
    assert first["outcome"] == "review" and first["log_index"] == registered + 1

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
    out = json.loads(res.stdout)
    assert out["outcome"] == "released" and out["released"] == ["address", "name"]
    assert "0 of 1 subjects' facts corrected" in res.stderr
    assert "notices: 1 sent, none deferred" in res.stderr

    res = run(["appeal", refused["id"], "--by", "requester", "--grounds", "urgent", *db])
    assert json.loads(res.stdout)["stage"] == "appealed"
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
    assert json.loads(res.stdout)["stage"] == "upheld"

    third = json.loads(run(["submit", *db, str(req)]).output)
    res = run(["withdraw", third["id"], "--by", "met-police", *db])
    assert json.loads(res.stdout)["stage"] == "withdrawn"
    assert json.loads(res.stdout)["outcome"] == "withdrawn"

    res = run(["requests", "--db", str(tmp_path / "cw.db"), "--json"])
    rows = [json.loads(line) for line in res.output.splitlines()]
    assert sorted((r["stage"], r["outcome"]) for r in rows) == [
        ("reviewed", "released"),
        ("upheld", "refused"),
        ("withdrawn", "withdrawn"),
    ]
    res = run(["requests", "--db", str(tmp_path / "cw.db")])
    assert res.exit_code == 0 and "3 requests" in res.output
    assert res.output.count("withdrawn") == 2  # its stage and its outcome
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


def test_withdrawal_through_the_cli(tmp_path: Path) -> None:
    db = ["--db", str(tmp_path / "cw.db"), "--key", str(tmp_path / "cw.key")]
    assert run(["init", *db]).exit_code == 0
    svc = Service.open(str(tmp_path / "cw.db"), tmp_path / "cw.key")
    rid = json.loads(run(["submit", *db, "-"], stdin=json.dumps(DOC)).output)["id"]
    size = svc.ledger.size()

    # another organisation (the holder included) cannot withdraw it; nothing is logged
    for org in ("whittington-health", "dwp"):
        res = run(["withdraw", rid, "--by", org, *db])
        assert res.exit_code == 2 and "only the requesting organisation" in res.stderr
    assert svc.ledger.size() == size

    res = run(["withdraw", rid, "--by", "met-police", *db])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"id": rid, "stage": "withdrawn", "outcome": "withdrawn"}
    (entry,) = [json.loads(e) for e in svc.ledger.entries(size, svc.ledger.size())]
    assert (entry["kind"], entry["request"], entry["by"]) == ("withdrawal", rid, "met-police")
    rec = svc.get(rid)
    assert (rec.outcome, rec.withdrawn_by) == ("withdrawn", "met-police")
    res = run(["requests", "--db", str(tmp_path / "cw.db"), "--state", "withdrawn", "--json"])
    assert [json.loads(line)["outcome"] for line in res.stdout.splitlines()] == ["withdrawn"]

    # a reviewed request can no longer be withdrawn
    done = json.loads(run(["submit", *db, "-"], stdin=json.dumps(DOC)).output)["id"]
    assert run(["review", done, "--reviewer", "ig-whittington", "--refuse", *db]).exit_code == 0
    size = svc.ledger.size()
    res = run(["withdraw", done, "--by", "met-police", *db])
    assert res.exit_code == 2 and "cannot withdraw" in res.stderr
    assert svc.ledger.size() == size
    svc.close()
