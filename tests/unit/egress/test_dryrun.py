"""The dry run: per column and group, go or not and why, as JSON and as Rich tables."""

from __future__ import annotations

from egress_helpers import MAPPING, PERMIT, VICTIM, decide
from rich.console import Console

from carewall.egress.dryrun import DryRun, dry_run, render_dry_run
from carewall.egress.mapping import load_mapping
from carewall.egress.plan import GROUPS, NEVER_RULE, build_plan

SOURCE = ("ref", "forename", "postcode", "attendance", "nationality", "sen", "under_18",
          "victim", "consent", "notes")  # fmt: skip


def _dry() -> DryRun:
    plan = build_plan(
        load_mapping(MAPPING), ["name", "attendance", "nationality"], decide, source_columns=SOURCE
    )
    counts = {g: 10 * (i + 1) for i, g in enumerate(GROUPS)}
    return dry_run(plan, counts)


def test_json() -> None:
    dry = _dry()
    out = dry.to_json()
    assert out["output_columns"] == ["forename", "attendance"]
    # groups 2 and 6 (victims without consent) are left out
    assert out["rows_left_out"] == 30 + 70 and dry.rows_out == sum(range(10, 81, 10)) - 100
    cols = {c["column"]: c for c in out["columns"]}
    assert list(cols) == ["forename", "postcode", "attendance", "nationality", "sen", "ref",
                          "under_18", "victim", "consent", "notes"]  # fmt: skip
    assert cols["forename"]["groups"][0] == {
        "facts": GROUPS[0].to_json(), "goes": True, "reason": "permitted", "rules": [PERMIT]
    }  # fmt: skip
    assert cols["forename"]["groups"][2]["rules"] == [VICTIM]
    assert cols["postcode"]["groups"][0]["reason"] == "not requested"
    assert cols["nationality"]["groups"][5]["rules"] == [NEVER_RULE]
    assert cols["notes"]["category"] is None and cols["notes"]["groups"][0]["reason"] == "unmapped"


def test_rich_tables_name_the_rules() -> None:
    console = Console(record=True, width=400)
    console.print(render_dry_run(_dry()))
    text = console.export_text()
    for word in (
        PERMIT,
        VICTIM,
        NEVER_RULE,
        "unmapped",
        "not requested",
        "left out",
        "fact column",
    ):
        assert word in text
    assert "100 left out" in text
