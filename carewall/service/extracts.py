"""Extracts: the firewall on bulk data (issue 10), built on the request lifecycle.

An extract is a request (§3) whose subjects are the rows of a dataset. ``make_extract``
reads each row's subject reference and facts from the source (through the mapping, fail
closed), submits the request with those subjects (logged and decided like any other: a
request to an immigration-enforcement body is refused and nothing is written), decides each
combination of facts once, and filters the dataset to a **held** file that holds only what
each row's group may receive (:mod:`carewall.egress`). Nothing leaves until
``release_extract``: a named release reviewer at the holder releases it, the file's hash is
checked against the one recorded when it was made, and one ``release`` entry per group
states the rows and the file's SHA-256, so anyone holding the file can check it against
the log. The rows' facts are the holder's own data, so they are the holder's record.

Both passes over the source (the subjects logged, then the filter) read one private copy
of it, checked unchanged afterwards (:mod:`carewall.service.extract_source`), so the
people logged are the people filtered. The request's ``extracts`` row is written
(``pending``) in the submit's own transaction, so it is never released by the ordinary
review, even when the filter fails; a release is logged only once the file is copied out
and the copy checked.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from carewall.egress import EgressMapping, EgressPlan, Source, build_plan, run, source_columns
from carewall.egress.compile import render, subjects_query
from carewall.egress.databases import DbReader
from carewall.egress.engines import duckdb_connection
from carewall.egress.plan import GROUPS, check_source_columns
from carewall.egress.read_errors import read_errors
from carewall.egress.reading import duckdb_relation
from carewall.errors import ConflictError, InputError, NotFoundError
from carewall.filehash import file_sha256
from carewall.policy.decision import CategoryDecision
from carewall.policy.facts import SubjectFacts
from carewall.service import submitting
from carewall.service import tables as t
from carewall.service.extract_source import make_hold_dir
from carewall.service.extract_source import pinned as pin_source
from carewall.service.extract_terms import Extract

if TYPE_CHECKING:
    from carewall.service.facade import Service

__all__ = [
    "ExtractRecord",
    "get_extract",
    "logged_files",
    "make_extract",
    "plan_extract",
    "release_extract",
    "sha256_of",
]

Engine = Literal["duckdb", "spark", "postgres"]
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class ExtractRecord:
    """An extract as its holder sees it: no row values, only counts, names and hashes."""

    request_id: str
    state: str  # pending | held | released | refused | failed
    path: str | None
    sha256: str | None
    bytes: int | None
    rows: int
    groups: list[dict[str, Any]]
    outcome: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def sha256_of(path: Path) -> str:
    """The file's SHA-256 as a release entry names it: ``sha256:<hex>``."""
    return "sha256:" + file_sha256(path)


def _subjects(source: Source, mapping: EgressMapping) -> list[dict[str, Any]]:
    """Each row's subject reference and facts, in source order (fail closed)."""
    con = duckdb_connection()
    reader = None if source.is_file else DbReader(source)
    try:
        cols = tuple(dict.fromkeys((mapping.subject_ref, *mapping.fact_columns)))
        rel = duckdb_relation(con, source, reader, cols)
        with read_errors(source, reader):
            rows = con.execute(render(subjects_query(mapping, rel), "duckdb")).fetchall()
    finally:
        con.close()
        if reader is not None:
            reader.close()
    out = []
    for k, (ref, code) in enumerate(rows):
        if ref is None or not str(ref).strip():
            raise InputError(
                f"row {k + 1} has no subject reference",
                field="subject_ref",
                fix="every row must name its person in the subject_ref column",
            )
        f = GROUPS[int(code)]
        out.append(
            {
                "ref": str(ref).strip(),
                "is_child": f.is_child,
                "is_victim_or_witness": f.is_victim_or_witness,
                "consent": f.consent,
            }
        )
    return out


def _decide_from(decision: Mapping[str, Any]) -> Callable[[SubjectFacts], dict[str, Any]]:
    """The stored decision, per combination of facts, as the egress plan asks for it."""

    def cats(obj: Any) -> dict[str, CategoryDecision]:
        out: dict[str, CategoryDecision] = {}
        for c, d in (obj or {}).items():
            rules = tuple(d.get("rules") or ())
            out[c] = CategoryDecision(
                "review" if d.get("outcome") == "review" else "refused", rules
            )
        return out

    groups = decision.get("groups")
    top = cats(decision.get("categories")) if decision.get("outcome") == "review" else {}

    def decide(facts: SubjectFacts) -> dict[str, Any]:
        if decision.get("outcome") != "review":
            return cats(decision.get("categories"))
        if not groups:
            return top
        for g in groups:
            if g.get("facts") == facts.to_json():
                return cats(g.get("categories"))
        return {}

    return decide


def plan_extract(
    doc: Mapping[str, Any],
    decision: Mapping[str, Any],
    mapping: EgressMapping,
    source: Source,
    columns: Sequence[str] | None = None,
) -> EgressPlan:
    """The egress plan for ``doc`` under ``decision`` (a §4 decision on its rows);
    ``columns``: the source's columns, when the caller has read them already."""
    cols = tuple(source_columns(source) if columns is None else columns)
    check_source_columns(mapping, cols)
    return build_plan(mapping, list(doc["categories"]), _decide_from(decision), source_columns=cols)


def _categories(plan: EgressPlan, rows: Mapping[SubjectFacts, int]) -> dict[SubjectFacts, Any]:
    cat_of = plan.mapping.category_of
    return {
        g.facts: sorted({cat_of[c] for c in g.columns})
        for g in plan.groups
        if g.receives and rows.get(g.facts, 0) > 0
    }


def _source_changed() -> ConflictError:
    return ConflictError(
        "the source changed while the extract was made",
        field="source",
        fix="make the extract again from a source nobody is writing to",
    )


def _settle(svc: Service, request_id: str, values: Mapping[str, Any]) -> None:
    """The pending extracts row of ``request_id`` updated to what the filter made."""
    with svc._write() as conn:
        conn.execute(
            t.extracts.update()
            .where((t.extracts.c.request_id == request_id) & (t.extracts.c.state == "pending"))
            .values(**values)
        )


def _failed(svc: Service, request_id: str) -> None:
    """Best effort: a row left ``pending`` is unreleasable all the same."""
    with suppress(Exception):  # the original error is the one to report
        _settle(svc, request_id, {"state": "failed"})


def make_extract(
    svc: Service,
    doc: Mapping[str, Any],
    source: Source,
    mapping: EgressMapping,
    hold_dir: Path,
    *,
    engine: Engine = "duckdb",
    fmt: Literal["parquet", "csv"] = "parquet",
    progress: Progress | None = None,
) -> ExtractRecord:
    """Submit the extract request, and filter the dataset to a held file if anything may go.

    The request's ``extracts`` row is written in the submit's own transaction, ``pending``:
    from the moment it is logged the request can be released only as an extract, with its
    held, checked file (:func:`release_extract`), never by the ordinary review. It becomes
    ``held`` (a file), ``refused`` (nothing may go) or ``failed`` (the filter failed or the
    source changed: nothing kept; it can be refused or withdrawn, never released).
    """
    if doc.get("subjects"):
        raise InputError(
            "an extract's subjects are the rows of its source",
            field="subjects",
            fix="leave subjects out of the request document",
        )
    make_hold_dir(hold_dir)
    with pin_source(source, hold_dir) as (pinned, unchanged):
        columns = source_columns(pinned)
        check_source_columns(mapping, columns)  # before anything is read or logged
        subjects = _subjects(pinned, mapping)
        if not subjects:
            raise InputError("the source has no rows", field="source", fix="check the source")
        if progress:
            progress("read", len(subjects))

        def pending(conn: Connection, request_id: str, now: str) -> None:
            conn.execute(
                t.extracts.insert().values(
                    request_id=request_id,
                    state="pending",
                    format=fmt,
                    engine=engine,
                    rows=len(subjects),
                    groups="[]",
                    mapping=json.dumps(mapping.to_json()),
                    created_at=now,
                )
            )

        got = submitting.submit(svc, dict(doc, subjects=subjects), None, also=pending)
        path: Path | None = None
        try:
            path, values = _filter(
                svc, got, doc, subjects, pinned, columns, mapping, hold_dir, engine, fmt,
                progress, unchanged,
            )  # fmt: skip
            _settle(svc, got.id, values)
        except BaseException:
            if path is not None:
                path.unlink(missing_ok=True)
            _failed(svc, got.id)
            raise
    return get_extract(svc, got.id)


def _filter(
    svc: Service,
    got: Any,
    doc: Mapping[str, Any],
    subjects: Sequence[Mapping[str, Any]],
    pinned: Source,
    columns: Sequence[str],
    mapping: EgressMapping,
    hold_dir: Path,
    engine: Engine,
    fmt: Literal["parquet", "csv"],
    progress: Progress | None,
    unchanged: Callable[[], bool],
) -> tuple[Path | None, dict[str, Any]]:
    """The held file (None when nothing may go) and the extracts row's final values."""
    with svc.store.read() as conn:
        req = conn.execute(sa.select(t.requests).where(t.requests.c.id == got.id)).one()
    decision = json.loads(req.decision)
    plan = plan_extract(doc, decision, mapping, pinned, columns)
    counted: dict[SubjectFacts, int] = {}
    for s in subjects:
        k = SubjectFacts(s["is_child"], s["is_victim_or_witness"], s["consent"])
        counted[k] = counted.get(k, 0) + 1
    path: Path | None = None
    digest: str | None = None
    size: int | None = None
    rows_by: dict[SubjectFacts, int] = {}
    if got.outcome == "review" and not plan.empty:
        target = hold_dir / f"{got.id}.{fmt}"
        result = run(plan, pinned, target, engine=engine, fmt=fmt, progress=progress)
        if result.path is not None:
            path = Path(result.path)
        try:
            # The filter read the source the subjects were read from (the pinned copy, or
            # the same PostgreSQL rows), and found the same rows in each group.
            same = {k: v for k, v in result.counts.items() if v} == counted
            if not same or (path is not None and not unchanged()):
                raise _source_changed()
            rows_by = {k: v for k, v in result.rows_by_group.items() if v}
            if path is not None:
                os.chmod(path, 0o600)
                digest, size = sha256_of(path), path.stat().st_size
        except BaseException:
            if path is not None:
                path.unlink(missing_ok=True)
            raise
    groups = [
        {"facts": f.to_json(), "rows": rows_by.get(f, 0), "categories": cats}
        for f, cats in _categories(plan, rows_by).items()
    ]
    return path, {
        "state": "held" if path is not None else "refused",
        "path": None if path is None else str(path),
        "sha256": digest,
        "bytes": size,
        "groups": json.dumps(groups),
    }


def get_extract(svc: Service, request_id: str) -> ExtractRecord:
    with svc.store.read() as conn:
        row = conn.execute(
            sa.select(t.extracts, t.requests.c.outcome)
            .join(t.requests, t.requests.c.id == t.extracts.c.request_id)
            .where(t.extracts.c.request_id == request_id)
        ).first()
    if row is None:
        raise NotFoundError("no such extract", field="id", fix="list them with `carewall list`")
    return ExtractRecord(
        request_id=row.request_id,
        state=row.state,
        path=row.path,
        sha256=row.sha256,
        bytes=row.bytes,
        rows=int(row.rows),
        groups=json.loads(row.groups),
        outcome=row.outcome,
    )


def _holder_of(svc: Service, request_id: str) -> str:
    with svc.store.read() as conn:
        holder = conn.execute(
            sa.select(t.requests.c.holder).where(t.requests.c.id == request_id)
        ).scalar_one()
    return str(holder)


def release_extract(svc: Service, request_id: str, reviewer: str, out: Path) -> ExtractRecord:
    """A named release reviewer releases the held file: checked, copied out, the copy
    checked, and only then logged.

    Nothing is logged until the copy is at ``out`` and hashes as the file that was made; if
    the release is then refused (or its transaction fails), the copy is removed and the
    extract is still held, releasable. The release's log entries and the extract's
    ``released`` state are written in one transaction (:func:`~.releasing.release_in`).
    """
    ext = get_extract(svc, request_id)
    if ext.state != "held" or ext.path is None or ext.sha256 is None:
        raise ConflictError(
            f"this extract is {ext.state}: only a held extract can be released",
            field="id",
            fix="see `carewall egress show`",
        )
    # Who may release is checked again when it is logged; checked first here too, so that
    # nobody else makes a copy.
    svc._check_reviewer(svc.register(), reviewer, _holder_of(svc, request_id), "release_reviewer")
    held = Path(ext.path)
    if not held.is_file() or sha256_of(held) != ext.sha256:
        raise ConflictError(
            "the held file is missing or no longer the file that was made",
            field="id",
            fix="make the extract again with `carewall egress run`",
        )
    if out.exists():
        raise InputError("already exists", field="--out", fix="choose a new path")
    if not out.parent.is_dir():
        raise InputError("the folder does not exist", field="--out", fix="create it first")
    terms = Extract(
        ext.sha256,
        {
            SubjectFacts(
                g["facts"]["is_child"], g["facts"]["is_victim_or_witness"], g["facts"]["consent"]
            ): frozenset(g["categories"])
            for g in ext.groups
        },
    )
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        shutil.copyfile(held, tmp)
        if sha256_of(tmp) != ext.sha256:  # the copy is checked as the original was
            raise ConflictError(
                "the file changed while it was copied; nothing was released",
                field="--out",
                fix="make the extract again with `carewall egress run`",
            )
        if out.exists():
            raise InputError("already exists", field="--out", fix="choose a new path")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    try:
        svc.record_review(request_id, reviewer, True, extract=terms)
    except BaseException:
        if not _released(svc, request_id):
            out.unlink(missing_ok=True)
        raise
    return get_extract(svc, request_id)


def _released(svc: Service, request_id: str) -> bool:
    """Whether the release was recorded after all (a failure reported after its commit)."""
    try:
        return get_extract(svc, request_id).state == "released"
    except Exception:  # unknown: treated as not released
        return False


def logged_files(svc: Service, request_id: str) -> dict[str, list[int]]:
    """The files the log says were released for ``request_id``: hash -> release entries."""
    with svc.store.read() as conn:
        indices = [
            int(i)
            for (i,) in conn.execute(
                sa.select(t.events.c.log_index).where(
                    (t.events.c.request_id == request_id) & (t.events.c.kind == "released")
                )
            )
        ]
    out: dict[str, list[int]] = {}
    for i in sorted(indices):
        (data,) = svc.ledger.entries(i, i + 1)
        entry = json.loads(data)
        if entry.get("kind") == "release" and entry.get("file"):
            out.setdefault(str(entry["file"]), []).append(i)
    return out
