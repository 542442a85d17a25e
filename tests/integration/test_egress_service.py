"""An extract through carewall's own commands: plan, run, hold, release, check, audit.

A synthetic national-pupil-style table (a few thousand rows; the engines are tested at a
million rows in test_egress_engines.py) is asked for by the police and by immigration
enforcement. Every step goes through the ``carewall egress`` CLI on a real instance, and the
log is replayed by the auditor at the end.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from cli_support import run
from logaudit import assert_log_audits

from carewall.egress.synthetic import MAPPINGS, write_file
from carewall.errors import ConflictError
from carewall.service import Service
from carewall.service.extracts import sha256_of

ROWS = 3000
NEVER = {"nationality", "country_of_birth", "immigration_status"}


def police(**kw: Any) -> dict[str, Any]:
    doc = {
        "reference": "MPS-2026-EXTRACT-1",
        "requester": "met-police",
        "holder": "st-marys-primary",
        "purpose": "prevention_detection_of_crime",
        "legal_basis": "dpa2018_sch2_p1_para2_crime",
        "offence": "theft_act_1968_s1",
        "categories": ["name", "address", "date_of_birth", "nationality"],
        "necessity": "A series of thefts at the school gates.",
        "other_bases": [],
        "onward_recipients": [],
        "prejudice": False,
    }
    return doc | kw


def immigration() -> dict[str, Any]:
    return police(
        reference="HO-IE-2026-1",
        requester="home-office-ie",
        purpose="immigration_enforcement",
        legal_basis="dpa2018_sch2_p1_para4_immigration",
        offence="immigration_act_1971_s24",
    )


class Instance:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.url = f"sqlite:///{tmp / 'cw.db'}"
        svc = Service.init(self.url, None, "egress.test/log", tmp / "cw.key")
        svc.close()
        self.db = ["--db", self.url, "--key", str(tmp / "cw.key")]
        self.source = write_file("pupils", ROWS, tmp / "pupils.parquet", seed=7)
        self.mapping = tmp / "pupils.toml"
        self.mapping.write_text(MAPPINGS["pupils"])
        self.hold = tmp / "held"

    def doc(self, doc: dict[str, Any], name: str = "request.json") -> Path:
        path = self.tmp / name
        path.write_text(json.dumps(doc))
        return path

    def inputs(self, doc: dict[str, Any]) -> list[str]:
        return [
            "--request", str(self.doc(doc)), "--source", str(self.source),
            "--mapping", str(self.mapping),
        ]  # fmt: skip

    def run(self, doc: dict[str, Any]) -> tuple[int, dict[str, Any] | None, str]:
        res = run(["egress", "run", *self.inputs(doc), *self.db, "--hold-dir", str(self.hold)])
        body = json.loads(res.stdout) if res.stdout.strip().startswith("{") else None
        return res.exit_code, body, res.output

    def service(self) -> Service:
        return Service.open(self.url, self.tmp / "cw.key")


@pytest.fixture
def inst(tmp_path: Path) -> Iterator[Instance]:
    yield Instance(tmp_path)


def log_entries(svc: Service) -> list[dict[str, Any]]:
    return [json.loads(e) for e in svc.ledger.entries(0, svc.ledger.size())]


def test_a_dry_run_shows_what_would_go_and_writes_nothing(inst: Instance) -> None:
    svc = inst.service()
    size = svc.ledger.size()
    svc.close()
    res = run(["egress", "plan", *inst.inputs(police()), *inst.db, "--json"])
    assert res.exit_code == 0, res.output
    dry = json.loads(res.stdout)
    text = json.dumps(dry)
    assert "never disclosed" in text and "unmapped" in text
    assert dry["rows_out"] + dry["rows_left_out"] == ROWS
    svc = inst.service()
    try:
        assert svc.ledger.size() == size  # a dry run logs nothing
    finally:
        svc.close()
    assert not inst.hold.exists()


def test_an_extract_is_held_released_by_a_named_reviewer_and_checkable(inst: Instance) -> None:
    code, made, out = inst.run(police())
    assert code == 0 and made is not None, out
    assert made["state"] == "held" and made["rows"] == ROWS
    held = Path(made["path"])
    assert held.parent == inst.hold and stat.S_IMODE(held.stat().st_mode) == 0o600
    assert sha256_of(held) == made["sha256"]
    table = pq.read_table(held)
    assert not NEVER & set(table.column_names)  # asked for, never disclosed
    assert "staff_notes" not in table.column_names and "pupil_id" not in table.column_names
    assert {"forename", "surname", "address", "postcode"} <= set(table.column_names)
    # victims and witnesses without consent are left out of a police extract
    written = sum(g["rows"] for g in made["groups"])
    assert table.num_rows == written < ROWS
    assert all(
        not (g["facts"]["is_victim_or_witness"] and not g["facts"]["consent"])
        for g in made["groups"]
    )

    svc = inst.service()
    try:
        rid = made["request_id"]
        with pytest.raises(ConflictError):  # not by the ordinary review: the file is the point
            svc.review(rid, "dpo-st-marys", True)
    finally:
        svc.close()
    target = inst.tmp / "to-police.parquet"
    res = run(["egress", "release", rid, "--reviewer", "dpo-st-marys", "--out", str(target),
               *inst.db])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["state"] == "released"
    assert sha256_of(target) == made["sha256"]

    svc = inst.service()
    try:
        releases = [e for e in log_entries(svc) if e["kind"] == "release"]
        assert releases and all(e["file"] == made["sha256"] for e in releases)
        assert sum(e["subjects"] for e in releases) == written
        by_group = {(e["is_child"], e["is_victim_or_witness"], e["consent"]): e for e in releases}
        for g in made["groups"]:
            f = g["facts"]
            e = by_group[(f["is_child"], f["is_victim_or_witness"], f["consent"])]
            assert (e["subjects"], e["categories"]) == (g["rows"], g["categories"])
        assert len(svc.notices(rid)) == written  # each person in the file is told
        assert_log_audits(svc)
    finally:
        svc.close()
    ok = run(["egress", "check", str(target), rid, "--db", inst.url])
    assert ok.exit_code == 0 and made["sha256"] in ok.stdout
    altered = inst.tmp / "altered.parquet"
    altered.write_bytes(target.read_bytes() + b"\n")
    bad = run(["egress", "check", str(altered), rid, "--db", inst.url])
    assert bad.exit_code == 1 and "NOT the file released" in bad.output
    again = run(["egress", "release", rid, "--reviewer", "dpo-st-marys", "--out",
                 str(inst.tmp / "twice.parquet"), *inst.db])  # fmt: skip
    assert again.exit_code != 0 and "only a held extract" in again.output


def test_a_request_to_immigration_enforcement_produces_no_output(inst: Instance) -> None:
    code, made, out = inst.run(immigration())
    assert code == 1 and made is not None, out
    assert made["state"] == "refused" and made["path"] is None and made["sha256"] is None
    assert not inst.hold.exists() or not any(inst.hold.iterdir())
    svc = inst.service()
    try:
        kinds = [e["kind"] for e in log_entries(svc)[-2:]]
        assert kinds == ["request", "decision"]  # the attempt is logged, as a refusal
        assert log_entries(svc)[-1]["outcome"] == "refused"
        assert_log_audits(svc)
    finally:
        svc.close()


def test_a_held_file_changed_before_release_is_not_released(inst: Instance) -> None:
    code, made, out = inst.run(police())
    assert code == 0 and made is not None, out
    Path(made["path"]).write_bytes(b"something else")
    svc = inst.service()
    size = svc.ledger.size()
    svc.close()
    target = inst.tmp / "out.parquet"
    res = run(["egress", "release", made["request_id"], "--reviewer", "dpo-st-marys",
               "--out", str(target), *inst.db])  # fmt: skip
    assert res.exit_code != 0 and "no longer the file that was made" in res.output
    assert not target.exists()
    svc = inst.service()
    try:
        assert svc.ledger.size() == size  # nothing logged
    finally:
        svc.close()


def test_hostile_inputs_are_refused_with_the_field_named(inst: Instance) -> None:
    code, _, out = inst.run(police(subjects=[{"ref": "X", "is_child": False,
                                              "is_victim_or_witness": False}]))  # fmt: skip
    assert code == 2 and "subjects" in out
    res = run(["egress", "release", "r00000000000000000000", "--reviewer", "dpo-st-marys",
               "--out", str(inst.tmp / "x.parquet"), *inst.db])  # fmt: skip
    assert res.exit_code != 0 and "no such extract" in res.output
    made = inst.run(police())[1]
    assert made is not None
    res = run(["egress", "release", made["request_id"], "--reviewer", "dpo-met",
               "--out", str(inst.tmp / "x.parquet"), *inst.db])  # fmt: skip
    assert res.exit_code != 0 and not (inst.tmp / "x.parquet").exists()
    bad_map = inst.tmp / "bad.toml"
    bad_map.write_text(MAPPINGS["pupils"].replace('"name"', '"shoe_size"', 1))
    res = run(["egress", "run", "--request", str(inst.doc(police())), "--source",
               str(inst.source), "--mapping", str(bad_map), *inst.db])  # fmt: skip
    assert res.exit_code == 2 and "columns.'forename'" in res.output
    assert "not a vocabulary category" in res.output


def test_one_review_releases_one_file() -> None:
    """A forged log in which the releases of one review name two different files fails."""
    import copy

    from audit_serving import audit_in_memory
    from audit_support import full_log

    b = full_log()
    entries = copy.deepcopy(b.entries)
    pair = next(
        i
        for i in range(len(entries) - 1)
        if entries[i]["kind"] == entries[i + 1]["kind"] == "release"
        and entries[i]["request"] == entries[i + 1]["request"]
    )
    entries[pair]["file"] = "sha256:" + "a" * 64
    entries[pair + 1]["file"] = "sha256:" + "b" * 64
    lines = [f.line() for f in audit_in_memory(entries).findings]
    assert any(
        f"entry {pair + 1} (release)" in ln and "names a file other than" in ln for ln in lines
    ), lines
