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


# ----- the people logged are the people filtered; a release is logged only once copied ------

SMALL_MAP = (
    'subject_ref = "ref"\n[columns]\nname = "name"\n'
    '[facts]\nis_child = "kid"\nis_victim_or_witness = "v"\nconsent = "c"\n'
)


def small_police(n: int = 1) -> dict[str, Any]:
    return police(reference=f"MPS-2026-SMALL-{n}", categories=["name"])


def make(inst: Instance, svc: Service, source: Any, n: int = 1, **kw: Any) -> Any:
    from carewall.egress import load_mapping
    from carewall.service.extracts import make_extract

    return make_extract(svc, small_police(n), source, load_mapping(SMALL_MAP), inst.hold, **kw)


def test_a_sqlite_source_changed_between_the_passes_gives_the_logged_people(
    inst: Instance,
) -> None:
    """Both passes read one private copy (SQLite: its backup), so the file holds the logged
    people whatever is written to the source in between."""
    import sqlite3

    from carewall.egress import Source

    db = inst.tmp / "src.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (ref, name, kid, v, c)")
    con.execute("INSERT INTO t VALUES ('P1', 'Logged Person', 'no', 'no', 'n')")
    con.commit()

    def swap(phase: str, n: int) -> None:
        if phase == "read":
            con.execute("UPDATE t SET ref = 'P3', name = 'Unlogged Person'")
            con.commit()

    svc = inst.service()
    try:
        rec = make(inst, svc, Source.sqlite(db, "t"), fmt="csv", progress=swap)
        assert Path(rec.path).read_text() == "name\nLogged Person\n"
        assert sorted(p.name for p in inst.hold.iterdir()) == [Path(rec.path).name]
    finally:
        svc.close()
        con.close()


def test_a_pinned_copy_changed_under_the_filter_keeps_nothing_and_cannot_be_released(
    inst: Instance,
) -> None:
    """The private copy both passes read is hashed before the first and after the second:
    changed in between, nothing is kept, and the request (logged, decided) can be refused
    but never released, by either path."""
    from carewall.egress import Source
    from carewall.service.extracts import get_extract, release_extract

    src = inst.tmp / "a.csv"
    src.write_text("ref,name,kid,v,c\nP1,Logged Person,no,no,n\n")

    def swap(phase: str, n: int) -> None:
        if phase == "read":
            (copy,) = inst.hold.glob(".source-*/a.csv")
            copy.write_text("ref,name,kid,v,c\nP3,Unlogged Person,no,no,n\n")

    svc = inst.service()
    try:
        size = svc.ledger.size()
        with pytest.raises(ConflictError, match="source changed"):
            make(inst, svc, Source.csv(src), fmt="csv", progress=swap)
        assert not any(inst.hold.iterdir())
        (rid,) = {e["request"] for e in log_entries(svc)[size:]}
        assert get_extract(svc, rid).state == "failed"
        with pytest.raises(ConflictError, match="this request is an extract"):
            svc.review(rid, "dpo-st-marys", True)
        with pytest.raises(ConflictError, match="only a held extract"):
            release_extract(svc, rid, "dpo-st-marys", inst.tmp / "out.csv")
        assert svc.review(rid, "dpo-st-marys", False).outcome == "refused"
        assert not [e for e in log_entries(svc)[size:] if e["kind"] == "release"]
        assert_log_audits(svc)
    finally:
        svc.close()


def test_an_extract_request_is_an_extract_from_its_submit(
    inst: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The extracts row is written in the submit's own transaction (pending): a filter that
    fails for any reason leaves a request the ordinary review will not release."""
    from carewall.egress import Source
    from carewall.service import extracts as extracts_mod
    from carewall.service.extracts import get_extract

    (inst.tmp / "a.csv").write_text("ref,name,kid,v,c\nP1,Amira,no,no,n\n")
    seen: list[str] = []

    def boom(*a: Any, **kw: Any) -> Any:
        rid = log_entries(svc)[-1]["request"]
        seen.append(get_extract(svc, rid).state)
        raise OSError("disk full")

    monkeypatch.setattr(extracts_mod, "run", boom)
    svc = inst.service()
    try:
        size = svc.ledger.size()
        with pytest.raises(OSError):
            make(inst, svc, Source.csv(inst.tmp / "a.csv"), fmt="csv")
        (rid,) = {e["request"] for e in log_entries(svc)[size:]}
        assert seen == ["pending"] and get_extract(svc, rid).state == "failed"
        with pytest.raises(ConflictError, match="this request is an extract"):
            svc.review(rid, "dpo-st-marys", True)
        assert not [e for e in log_entries(svc)[size:] if e["kind"] == "release"]
    finally:
        svc.close()


def test_a_release_refused_after_the_copy_removes_it_and_stays_releasable(
    inst: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy is made and checked before anything is logged; when the release then fails,
    the copy is removed, nothing is logged, and the extract is still held."""
    from carewall.egress import Source
    from carewall.errors import StorageError
    from carewall.service.extracts import get_extract, release_extract

    (inst.tmp / "a.csv").write_text("ref,name,kid,v,c\nP1,Amira,no,no,n\n")
    svc = inst.service()
    try:
        rec = make(inst, svc, Source.csv(inst.tmp / "a.csv"), fmt="csv")
        size = svc.ledger.size()
        out = inst.tmp / "to-police.csv"
        real = svc.record_review
        at_log: list[bool] = []

        def failing(*a: Any, **kw: Any) -> Any:
            at_log.append(out.is_file() and sha256_of(out) == rec.sha256)
            raise StorageError("the database went away")

        monkeypatch.setattr(svc, "record_review", failing)
        with pytest.raises(StorageError):
            release_extract(svc, rec.request_id, "dpo-st-marys", out)
        assert at_log == [True]  # the checked copy was in place before anything was logged
        assert not out.exists() and not list(inst.tmp.glob(".to-police.csv.*"))
        assert svc.ledger.size() == size and get_extract(svc, rec.request_id).state == "held"
        monkeypatch.setattr(svc, "record_review", real)
        done = release_extract(svc, rec.request_id, "dpo-st-marys", out)
        assert done.state == "released" and sha256_of(out) == rec.sha256
        assert_log_audits(svc)
    finally:
        svc.close()


@pytest.mark.postgres
def test_a_postgres_source_changed_between_the_passes_keeps_nothing(
    inst: Instance, pg_url: str
) -> None:
    """A PostgreSQL table cannot be copied: its rows' (ctid, xmin) are fingerprinted before
    the first pass and after the second. An update in between, even one that is undone,
    changes them: nothing is kept."""
    import psycopg

    from carewall.egress import Source

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (ref text, name text, kid text, v text, c text)")
        conn.execute("INSERT INTO t VALUES ('P1', 'Logged Person', 'no', 'no', 'n')")

        def swap(phase: str, n: int) -> None:
            if phase == "read":
                conn.execute("UPDATE t SET name = 'Unlogged Person'")
            if phase == "written":
                conn.execute("UPDATE t SET name = 'Logged Person'")  # and back

        svc = inst.service()
        try:
            rec = make(inst, svc, Source.postgres(pg_url, "t"), n=1, fmt="csv")
            assert Path(rec.path).read_text() == "name\nLogged Person\n"
            with pytest.raises(ConflictError, match="source changed"):
                make(inst, svc, Source.postgres(pg_url, "t"), n=2, fmt="csv", progress=swap)
            assert [p.name for p in inst.hold.iterdir()] == [Path(rec.path).name]
        finally:
            svc.close()
