"""Hostile review of ``carewall egress``: a hostile requester and a careless or dishonest
holder admin try to get more out of a bulk extract than the policy permits.

Each test states what carewall SHOULD do. Cases already covered by test_egress_engines.py,
test_egress_service.py and tests/unit/egress are not repeated here.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from carewall.cli import main
from carewall.egress import Source, load_mapping
from carewall.errors import AuthError, CarewallError, ConflictError, InputError
from carewall.service import Service
from carewall.service import extracts as extracts_mod
from carewall.service.extracts import get_extract, make_extract, release_extract, sha256_of

REVIEWER = "dpo-st-marys"
SECRET = "Syrian"  # a nationality: never disclosed, whatever the mapping says


def police(**kw: Any) -> dict[str, Any]:
    doc = {
        "reference": "MPS-2026-ATTACK-1",
        "requester": "met-police",
        "holder": "st-marys-primary",
        "purpose": "prevention_detection_of_crime",
        "legal_basis": "dpa2018_sch2_p1_para2_crime",
        "offence": "theft_act_1968_s1",
        "categories": ["name", "address"],
        "necessity": "A series of thefts at the school gates.",
        "other_bases": [],
        "onward_recipients": [],
        "prejudice": False,
    }
    return doc | kw


def mapping_text(columns: dict[str, str], ref: str = "ref", **facts: Any) -> str:
    f = {"is_child": "kid", "is_victim_or_witness": "v", "consent": "c"} | facts
    lines = [f"subject_ref = {json.dumps(ref)}", "[columns]"]
    lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in columns.items()]
    lines.append("[facts]")
    lines += [f"{k} = {json.dumps(v)}" for k, v in f.items()]
    return "\n".join(lines) + "\n"


class Inst:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.url = f"sqlite:///{tmp / 'cw.db'}"
        self.key = tmp / "cw.key"
        Service.init(self.url, None, "egress.attack/log", self.key).close()
        self.svc = Service.open(self.url, self.key)
        self.hold = tmp / "held"
        self.n = 0

    def make(self, source: Source, mapping: str, fmt: str = "parquet", **kw: Any) -> Any:
        self.n += 1
        doc = police(reference=f"MPS-2026-ATTACK-{self.n}")
        return make_extract(
            self.svc,
            doc,
            source,
            load_mapping(mapping),
            self.hold,
            fmt=fmt,
            **kw,  # type: ignore[arg-type]
        )

    def entries(self, start: int = 0) -> list[dict[str, Any]]:
        return [json.loads(e) for e in self.svc.ledger.entries(start, self.svc.ledger.size())]

    def close(self) -> None:
        self.svc.close()


@pytest.fixture
def inst(tmp_path: Path) -> Iterator[Inst]:
    i = Inst(tmp_path)
    try:
        yield i
    finally:
        i.close()


def file_text(path: str | Path) -> str:
    """Every value of an output file, as text (Parquet: its rows as JSON)."""
    p = Path(path)
    if p.suffix == ".csv":
        return p.read_text("utf-8", errors="replace")
    return json.dumps(pq.read_table(p).to_pylist(), default=str)


def held_text(rec: Any) -> str:
    return "" if rec.path is None else file_text(rec.path)


# ----- (b) columns the decision did not permit ---------------------------------------------


def test_duplicate_parquet_column_names_cannot_smuggle_nationality(inst: Inst) -> None:
    """The mapping is checked against pyarrow's names, DuckDB reads its own: a second
    column called ``name`` is ``name_1`` to DuckDB, so mapping the real ``name_1`` (a harmless
    note) as an address releases the duplicate (a nationality) instead."""
    table = pa.Table.from_arrays(
        [pa.array(v) for v in (["P1"], ["Amira"], [SECRET], ["harmless"], ["no"], ["no"], ["n"])],
        names=["ref", "name", "name", "name_1", "kid", "v", "c"],
    )
    pq.write_table(table, inst.tmp / "dup.parquet")
    mapping = mapping_text({"name_1": "address"})
    try:
        rec = inst.make(Source.parquet(inst.tmp / "dup.parquet"), mapping)
    except InputError as e:  # refusing a source with duplicate names is fine
        assert "name" in str(e)
        return
    assert SECRET not in held_text(rec), "the duplicate 'name' column left as 'name_1'"


def test_duplicate_parquet_flag_columns_cannot_unflag_a_victim(inst: Inst) -> None:
    """The same renaming on a flag: ``v_1`` in the file says victim (no consent), DuckDB
    reads the duplicate ``v`` (``no``) under that name, and the victim's row is released."""
    table = pa.Table.from_arrays(
        [pa.array(v) for v in (["P1"], ["Victim Name"], ["no"], ["no"], ["no"], ["yes"], ["n"])],
        names=["ref", "forename", "kid", "v", "v", "v_1", "c"],
    )
    pq.write_table(table, inst.tmp / "dupflag.parquet")
    mapping = mapping_text({"forename": "name"}, is_victim_or_witness="v_1")
    try:
        rec = inst.make(Source.parquet(inst.tmp / "dupflag.parquet"), mapping)
    except InputError:
        return
    assert rec.path is None and rec.state == "refused", rec
    assert all(g["facts"]["is_victim_or_witness"] for g in rec.groups) or not rec.groups


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("kind", ["struct", "map", "list"])
def test_a_nested_column_cannot_carry_a_never_disclosed_field(
    inst: Inst, kind: str, fmt: str
) -> None:
    """One column, one category: a struct / map / list column mapped as ``name`` carries
    whatever is nested in it (here a nationality) past the never-disclosed rule."""
    nested = {
        "struct": pa.array([{"forename": "Amira", "nationality": SECRET}]),
        "map": pa.array(
            [[("forename", "Amira"), ("nationality", SECRET)]], pa.map_(pa.string(), pa.string())
        ),
        "list": pa.array([["Amira", SECRET]]),
    }[kind]
    table = pa.table({"ref": ["P1"], "pupil": nested, "kid": ["no"], "v": ["no"], "c": ["n"]})
    pq.write_table(table, inst.tmp / "nested.parquet")
    mapping = mapping_text({"pupil": "name"})
    try:
        rec = inst.make(Source.parquet(inst.tmp / "nested.parquet"), mapping, fmt=fmt)
    except InputError as e:
        assert "pupil" in str(e)
        return
    assert SECRET not in held_text(rec), f"a {kind} column left with a nationality inside"


def test_the_subject_ref_column_is_never_output(inst: Inst) -> None:
    """docs/egress.md: subject_ref is 'the column naming each row's person (never output)'.
    The mapping refuses a fact read from it, but not the same column mapped as a category."""
    (inst.tmp / "a.csv").write_text("ref,name,kid,v,c\nNHS-9434765919,Amira,no,no,n\n")
    mapping = mapping_text({"name": "name", "ref": "name"})
    try:
        rec = inst.make(Source.csv(inst.tmp / "a.csv"), mapping, fmt="csv")
    except InputError as e:
        assert "ref" in str(e) and "subject_ref" in str(e)
        return
    assert "9434765919" not in held_text(rec), "the subject reference was written to the file"


def test_a_column_of_nationalities_mapped_as_another_category_is_refused(inst: Inst) -> None:
    """A careless mapping (``nationality = "address"``): carewall's own scanner
    (carewall/clean) recognises a nationality column by its name and values, but egress
    trusts the mapping, so the never-disclosed category leaves as an 'address'."""
    (inst.tmp / "a.csv").write_text(
        "ref,forename,nationality,kid,v,c\n"
        + "".join(
            f"P{i},Name{i},{n},no,no,n\n"
            for i, n in enumerate([SECRET, "Polish", "Eritrean", "Afghan"])
        )
    )
    mapping = mapping_text({"forename": "name", "nationality": "address"})
    try:
        rec = inst.make(Source.csv(inst.tmp / "a.csv"), mapping, fmt="csv")
    except InputError as e:
        assert "nationality" in str(e)
        return
    assert SECRET not in held_text(rec), "a nationality column left, labelled 'address'"


# ----- (b) rows of people the policy protects ----------------------------------------------


def test_blanket_consent_true_does_not_release_every_victim(inst: Inst) -> None:
    """``consent = true`` in the mapping states consent for every row at once. For a single
    request a claim of consent is never enough without the reviewer stating it per subject
    (carewall/service/releasing.py); one TOML line should not make every victim or witness
    in a dataset consenting."""
    (inst.tmp / "a.csv").write_text(
        "ref,forename,kid,v\nP1,Adult Name,no,no\nP2,Victim Name,no,yes\n"
    )
    mapping = mapping_text({"forename": "name"}, consent=True)
    try:
        rec = inst.make(Source.csv(inst.tmp / "a.csv"), mapping, fmt="csv")
    except InputError as e:
        assert "consent" in str(e)
        return
    assert "Victim Name" not in held_text(rec), "a victim released on a blanket consent"


ODD_NO = ["no\u200b", "\ufeffno", "\tno", "no\t", "ｎｏ", "nо", "N\u200bO", "０", "٠", "0.0",
          "-0", "00", "no.", "\u2060false", "fa\u00adlse"]  # fmt: skip
ODD_YES = ["yes\u200b", "ｙｅｓ", "yеs", "\ttrue", "1.0", "+1", "١", "y\u00ad"]


def _flag_rows() -> list[dict[str, Any]]:
    """Victims whose victim flag is an odd 'no', victims whose consent is an odd 'yes',
    children whose child flag is an odd 'no': all must read as the protected fact."""
    rows = []
    for i, w in enumerate(ODD_NO):
        rows.append({"ref": f"V{i}", "name": f"victimA{i}", "kid": "no", "v": w, "c": "no"})
        rows.append({"ref": f"K{i}", "name": f"child{i}", "kid": w, "v": "no", "c": "no"})
    for i, w in enumerate(ODD_YES):
        rows.append({"ref": f"W{i}", "name": f"victimB{i}", "kid": "no", "v": "yes", "c": w})
    rows.append({"ref": "A0", "name": "adult0", "kid": "no", "v": "no", "c": "no"})
    return rows


def _write_flags(kind: str, path: Path) -> Source:
    rows = _flag_rows()
    cols = ["ref", "name", "kid", "v", "c"]
    if kind == "csv":
        import csv

        with path.with_suffix(".csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, cols)
            w.writeheader()
            w.writerows(rows)
        return Source.csv(path.with_suffix(".csv"))
    if kind.startswith("parquet"):
        table = pa.table({c: [r[c] for r in rows] for c in cols})
        pq.write_table(table, path.with_suffix(".parquet"), use_dictionary=kind == "parquet-dict")
        return Source.parquet(path.with_suffix(".parquet"))
    db = path.with_suffix(".db")
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (ref, name, kid, v, c)")
    con.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?)", [tuple(r[c] for c in cols) for r in rows]
    )
    con.commit()
    con.close()
    return Source.sqlite(db, "t")


@pytest.mark.parametrize("kind", ["csv", "parquet-dict", "parquet-plain", "sqlite"])
def test_odd_flag_spellings_fail_closed_end_to_end(inst: Inst, kind: str) -> None:
    """Zero-width, BOM, word joiner, soft hyphen, tab, full-width, Cyrillic lookalikes,
    other digits (Unicode spaces: see the next test): none reads as 'not a victim',
    'not a child' or 'consents', in the logged subjects or in the held file, on any
    source."""
    source = _write_flags(kind, inst.tmp / "flags")
    rec = inst.make(source, mapping_text({"name": "name"}))
    text = held_text(rec)
    assert "victimA" not in text and "victimB" not in text
    assert "adult0" in text
    n_children = len(ODD_NO)
    child_rows = sum(g["rows"] for g in rec.groups if g["facts"]["is_child"])
    assert child_rows == n_children, rec.groups
    assert all(not (g["facts"]["is_victim_or_witness"] and not g["facts"]["consent"])
               for g in rec.groups)  # fmt: skip
    subjects = [e for e in inst.entries() if e["kind"] == "request"][-1]
    assert subjects["subjects"] == len(_flag_rows())


SPACES = ["\u00a0", "\u2007", "\u202f", "\u2009", "\u3000"]


@pytest.mark.parametrize("kind", ["parquet-dict", "csv", "sqlite"])
def test_unicode_space_padded_flags_fail_closed(inst: Inst, kind: str) -> None:
    """docs/egress.md: flags are 'trimmed' of spaces only, anything else fails closed
    (compile.py: 'TRIM removes spaces only, on every engine'). DuckDB 2's TRIM also strips
    NBSP, figure, narrow, thin and ideographic spaces, so on DuckDB ``\u00a0yes`` is
    consent and ``\u00a0no`` is 'not a victim', while flags.decode_flag (and PostgreSQL)
    fail closed. A victim with such a flag and no real consent must be left out."""
    rows = [("A0", "adult0", "no", "no", "no")]
    for i, sp in enumerate(SPACES):
        rows.append((f"V{i}", f"victimA{i}", "no", f"{sp}no{sp}", "no"))
        rows.append((f"W{i}", f"victimB{i}", "no", "yes", f"{sp}yes{sp}"))
    cols = ["ref", "name", "kid", "v", "c"]
    base = inst.tmp / "sp"
    if kind == "csv":
        import csv

        with base.with_suffix(".csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            w.writerows(rows)
        source = Source.csv(base.with_suffix(".csv"))
    elif kind == "sqlite":
        con = sqlite3.connect(base.with_suffix(".db"))
        con.execute("CREATE TABLE t (ref, name, kid, v, c)")
        con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows)
        con.commit()
        con.close()
        source = Source.sqlite(base.with_suffix(".db"), "t")
    else:
        table = pa.table({c: [r[k] for r in rows] for k, c in enumerate(cols)})
        pq.write_table(table, base.with_suffix(".parquet"))
        source = Source.parquet(base.with_suffix(".parquet"))
    rec = inst.make(source, mapping_text({"name": "name"}))
    text = held_text(rec)
    assert "victimA" not in text, "a victim flagged '<NBSP>no' was released"
    assert "victimB" not in text, "a victim whose consent is '<NBSP>yes' was released"
    assert "adult0" in text
    assert all(not (g["facts"]["is_victim_or_witness"] and g["facts"]["consent"])
               for g in rec.groups), rec.groups  # fmt: skip


def test_carewall_alias_names_in_the_source_change_nothing(inst: Inst) -> None:
    """Source columns named like carewall's own aliases (``_cw_group``, ``_cw_order``,
    ``_cw_0``), as output columns and as a flag, must not steer the group code."""
    table = pa.table({
        "ref": ["P1", "P2"], "_cw_group": ["0", "0"], "_cw_order": ["o1", "o2"],
        "_cw_0": ["no", "yes"], "kid": ["no", "no"], "c": ["n", "n"],
    })  # fmt: skip
    for fmt in ("parquet", "csv"):
        pq.write_table(table, inst.tmp / "cw.parquet")
        rec = inst.make(
            Source.parquet(inst.tmp / "cw.parquet"),
            mapping_text(
                {"_cw_group": "name", "_cw_order": "address"}, is_victim_or_witness="_cw_0"
            ),
            fmt=fmt,
        )
        text = held_text(rec)
        assert "o1" in text and "o2" not in text  # P2 is a victim without consent


# ----- (d) the file released is the file logged, and the people logged are the people in it -


def test_a_source_changed_between_the_subjects_and_the_filter_is_not_kept(inst: Inst) -> None:
    """The subjects are read in one pass, the file written in another; only the rows per
    group are compared. A source rewritten in between with the same shape (an ETL job, or
    an admin) gives a held file of people the log never names and who are never told."""
    src = inst.tmp / "a.csv"
    src.write_text("ref,name,kid,v,c\nP1,Logged Person,no,no,n\nP2,Victim,no,yes,n\n")

    def swap(phase: str, n: int) -> None:
        if phase == "read":
            src.write_text("ref,name,kid,v,c\nP3,Unlogged Person,no,no,n\nP2,Victim,no,yes,n\n")

    try:
        rec = inst.make(Source.csv(src), mapping_text({"name": "name"}), fmt="csv", progress=swap)
    except ConflictError:
        assert not inst.hold.exists() or not any(inst.hold.iterdir())
        return
    assert "Unlogged Person" not in held_text(rec), "the held file holds a person not logged"


def test_a_hold_dir_that_is_a_file_is_a_clean_error(inst: Inst) -> None:
    """``--hold-dir`` naming a file: a clean error (exit 2, the field named), and the request
    must not be left logged and decided with no extract behind it."""
    (inst.tmp / "a.csv").write_text("ref,name,kid,v,c\nP1,Amira,no,no,n\n")
    (inst.tmp / "map.toml").write_text(mapping_text({"name": "name"}))
    (inst.tmp / "req.json").write_text(json.dumps(police()))
    (inst.tmp / "notadir").write_text("x")
    size = inst.svc.ledger.size()
    res = CliRunner().invoke(main, [
        "egress", "run", "--request", str(inst.tmp / "req.json"),
        "--source", str(inst.tmp / "a.csv"), "--mapping", str(inst.tmp / "map.toml"),
        "--db", inst.url, "--key", str(inst.key), "--hold-dir", str(inst.tmp / "notadir"),
    ])  # fmt: skip
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 2 and "hold" in res.output
    assert inst.svc.ledger.size() == size, "an extract request was logged with no extract"


def test_a_failed_extract_cannot_be_released_by_the_ordinary_review(inst: Inst) -> None:
    """``carewall egress run`` on a CSV whose 3,001st row holds a byte that is not UTF-8 in
    an output column: the subjects pass (ref and flags only) reads it, the request is logged
    and decided, then the filter fails. No ``extracts`` row exists, so the ordinary
    ``review`` releases it: every row's categories, logged with no file hash."""
    rows = "".join(f"P{i},N{i},no,no,n\n" for i in range(3000)).encode()
    (inst.tmp / "c.csv").write_bytes(b"ref,name,kid,v,c\n" + rows + b"Q1,Bad \xff Byte,no,no,n\n")
    (inst.tmp / "map.toml").write_text(mapping_text({"name": "name"}))
    (inst.tmp / "req.json").write_text(json.dumps(police()))
    size = inst.svc.ledger.size()
    res = CliRunner().invoke(main, [
        "egress", "run", "--request", str(inst.tmp / "req.json"),
        "--source", str(inst.tmp / "c.csv"), "--mapping", str(inst.tmp / "map.toml"),
        "--db", inst.url, "--key", str(inst.key), "--hold-dir", str(inst.hold),
    ])  # fmt: skip
    assert res.exit_code != 0
    logged = [e for e in inst.entries(size) if e["kind"] == "request"]
    if not logged:
        return  # nothing logged: nothing to release
    rid = logged[0]["request"]
    with pytest.raises(CarewallError):
        inst.svc.review(rid, REVIEWER, True)
    releases = [e for e in inst.entries(size) if e["kind"] == "release"]
    assert releases == [], "an extract request released with no file: " + json.dumps(releases)


def test_a_release_whose_copy_fails_its_check_logs_no_release(
    inst: Inst, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The held file swapped during the release (after its hash is checked, before it is
    copied): the copy's check catches it, but the release entries naming the file are
    already in the public log, with notices queued, and nothing left."""
    (inst.tmp / "a.csv").write_text("ref,name,kid,v,c\nP1,Amira,no,no,n\n")
    rec = inst.make(Source.csv(inst.tmp / "a.csv"), mapping_text({"name": "name"}), fmt="csv")
    size = inst.svc.ledger.size()
    real = shutil.copyfile

    def swapped(src: Any, dst: Any) -> Any:
        Path(src).write_text("name\nSomeone Else\n")
        return real(src, dst)

    monkeypatch.setattr(extracts_mod.shutil, "copyfile", swapped)
    out = inst.tmp / "to-police.csv"
    with pytest.raises(ConflictError):
        release_extract(inst.svc, rec.request_id, REVIEWER, out)
    assert not out.exists()
    kinds = [e["kind"] for e in inst.entries(size)]
    assert "release" not in kinds, f"the log says released, nothing was: {kinds}"


@pytest.mark.parametrize(
    "reviewer",
    [
        " dpo-st-marys",
        "DPO-ST-MARYS",
        "dpo-st-marys\u200b",
        "dpo\u2011st\u2011marys",
        "dpo-st-marys\t",
        "ԁpo-st-marys",
        "",
    ],
)
def test_egress_release_refuses_reviewer_lookalikes(inst: Inst, reviewer: str) -> None:
    (inst.tmp / "a.csv").write_text("ref,name,kid,v,c\nP1,Amira,no,no,n\n")
    rec = inst.make(Source.csv(inst.tmp / "a.csv"), mapping_text({"name": "name"}), fmt="csv")
    size = inst.svc.ledger.size()
    out = inst.tmp / "out.csv"
    with pytest.raises(AuthError):
        release_extract(inst.svc, rec.request_id, reviewer, out)
    assert not out.exists() and inst.svc.ledger.size() == size
    assert get_extract(inst.svc, rec.request_id).state == "held"
    assert sha256_of(Path(rec.path)) == rec.sha256


# ----- errors: never a crash, never a value from the data ----------------------------------


def _clean_error(inst: Inst, source: Source, mapping: str, secret: str) -> None:
    with pytest.raises(Exception) as e:
        inst.make(source, mapping)
    assert isinstance(e.value, CarewallError), f"{type(e.value).__name__}: {str(e.value)[:300]}"
    assert secret not in str(e.value), "the error quotes a value from the data"


def test_a_malformed_csv_row_is_a_clean_error_without_its_values(inst: Inst) -> None:
    rows = "".join(f"P{i},N{i},no,no,n\n" for i in range(3000))
    (inst.tmp / "b.csv").write_text("ref,name,kid,v,c\n" + rows + "Q1,Secret Person,no,no,n,X\n")
    _clean_error(inst, Source.csv(inst.tmp / "b.csv"), mapping_text({"name": "name"}),
                 "Secret Person")  # fmt: skip


def test_invalid_utf8_in_a_csv_is_a_clean_error_without_its_values(inst: Inst) -> None:
    rows = "".join(f"P{i},N{i},no,no,n\n" for i in range(3000)).encode()
    (inst.tmp / "c.csv").write_bytes(
        b"ref,name,kid,v,c\n" + rows + b"Q1,Secret \xff Person,no,no,n\n"
    )
    _clean_error(inst, Source.csv(inst.tmp / "c.csv"), mapping_text({"name": "name"}),
                 "Person")  # fmt: skip


def test_undecodable_sqlite_text_is_a_clean_error_without_its_values(inst: Inst) -> None:
    db = inst.tmp / "s.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (ref, name, kid, v, c)")
    con.execute("INSERT INTO t VALUES ('P1', CAST(X'536563726574205065727300FF' AS TEXT),"
                " 'no', 'no', 'n')")  # fmt: skip
    con.commit()
    con.close()
    _clean_error(inst, Source.sqlite(db, "t"), mapping_text({"name": "name"}), "Secret")
