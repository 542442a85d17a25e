"""Delete what a scan found: plan (the dry run), then apply in one transaction per source.

Applying MUST change nothing unless every step succeeds: count and commit to the values
(HMAC), null or drop them, re-scan to prove none remain, sign the certificate, and have the
``recorder`` append the ``deletion`` entry. The source's commit is the recorder's last act
before its own ledger commit, so a failure anywhere earlier leaves the source as it was and
the log without an entry.

- SQLite and PostgreSQL: one transaction in the source database itself (``BEGIN
  IMMEDIATE`` / ``LOCK TABLE``), ``UPDATE … SET col = NULL WHERE <date range>`` or ``ALTER
  TABLE … DROP COLUMN``, and the re-scan inside that transaction, before the commit: of
  the purged tables (within the date range) and of every other table, whole, compared with
  its scan before the purge (no value may have been copied elsewhere). A purged table with
  triggers (or PostgreSQL rules) is refused: they could keep copies of what is deleted.
- CSV and Parquet: each purged file is written anew beside the original, re-scanned, and
  only then moved over it with :func:`os.replace` (atomic per file).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from carewall.clean.certificate import HEADER, ValueCommitment, sign_certificate
from carewall.clean.rules import RuleSet, default_rules
from carewall.clean.scanner import ScanReport, scan
from carewall.clean.sources import (
    BATCH_ROWS,
    DateRange,
    FileSource,
    PostgresSource,
    Source,
    SqliteSource,
    Table,
    duck,
    quote,
)
from carewall.errors import InputError, ScanError
from carewall.filehash import file_sha256
from carewall.ledger.note import Signer

__all__ = [
    "Action",
    "Applied",
    "PlannedColumn",
    "PlannedTable",
    "PurgePlan",
    "Recorder",
    "apply",
    "plan",
]

Action = Literal["null", "drop"]


class Recorder(Protocol):
    """Records a signed certificate in the log. MUST call ``commit`` (the source's commit)
    after appending its entry and before committing it, and raise if anything fails."""

    def __call__(
        self, certificate: str, body: Mapping[str, Any], commit: Callable[[], None]
    ) -> int: ...


@dataclass(frozen=True)
class PlannedColumn:
    column: str
    category: str
    rule: str
    values: int  # values that would be deleted


@dataclass(frozen=True)
class PlannedTable:
    table: str
    columns: tuple[PlannedColumn, ...]
    records: int  # rows that would change


@dataclass(frozen=True)
class PurgePlan:
    source: str
    kind: str
    action: Action
    date_range: DateRange | None
    tables: tuple[PlannedTable, ...]
    skipped: tuple[str, ...] = ()  # files of a folder neither scanned nor purged

    @property
    def categories(self) -> list[str]:
        return sorted({c.category for t in self.tables for c in t.columns})

    @property
    def records(self) -> int:
        return sum(t.records for t in self.tables)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": {"kind": self.kind, "name": self.source},
            "action": self.action,
            "date_range": self.date_range.public() if self.date_range else None,
            "categories": self.categories,
            "records": self.records,
            "tables": [
                {
                    "table": t.table,
                    "records": t.records,
                    "columns": [
                        {"column": c.column, "category": c.category, "rule": c.rule,
                         "values": c.values}
                        for c in t.columns
                    ],
                }
                for t in self.tables
            ],
            "skipped": list(self.skipped),
        }  # fmt: skip


def _counts(source: Source, table: Table, columns: Sequence[str], where: DateRange | None) -> Any:
    con = duck()
    try:
        rel = source.relation(con, table, columns, where)
        any_ = " OR ".join(f"c{i} IS NOT NULL" for i in range(len(columns)))
        sql = ", ".join(f"count(c{i})" for i in range(len(columns)))
        row = con.execute(f"SELECT {sql}, count(*) FILTER (WHERE {any_}) FROM {rel}").fetchall()
        return row[0]
    finally:
        con.close()


def plan(
    source: Source,
    report: ScanReport,
    *,
    action: Action = "null",
    date_range: DateRange | None = None,
) -> PurgePlan:
    """What applying would change: the flagged columns' values within ``date_range``."""
    if action not in ("null", "drop"):
        raise InputError("must be null or drop", field="--action")
    if action == "drop" and date_range is not None:
        raise InputError(
            "dropping a column deletes every value in it, not only those in a date range",
            field="--action",
            fix="use --action null with a date range, or drop without one",
        )
    by_table: dict[str, list[Any]] = {}
    for c in report.flagged:
        if c.column not in [x.column for x in by_table.get(c.table, [])]:
            by_table.setdefault(c.table, []).append(c)
    tables = {t.name: t for t in source.tables()}
    planned = []
    for name, cols in by_table.items():
        if name not in tables:
            raise ScanError(f"table {name!r} is gone since the scan", field="SOURCE")
        names = [c.column for c in cols]
        row = _counts(source, tables[name], names, date_range)
        planned.append(
            PlannedTable(
                name,
                tuple(
                    PlannedColumn(c.column, c.category, c.rule, int(row[i]))
                    for i, c in enumerate(cols)
                ),
                int(row[-1]),
            )
        )
    return PurgePlan(
        source.label, source.kind, action, date_range, tuple(planned), tuple(source.skipped)
    )


# ----- applying ----------------------------------------------------------------------------


def _commit_values(
    key: bytes, table: str, column: str, rows: Iterator[Sequence[Any]]
) -> ValueCommitment:
    mac = ValueCommitment(key, table, column)
    for batch in rows:
        mac.add(str(r[0]) for r in batch)
    return mac


def _batches(fetchmany: Callable[[int], Sequence[Any]]) -> Iterator[Sequence[Any]]:
    while batch := fetchmany(BATCH_ROWS):
        yield batch


def _lock(source: SqliteSource | PostgresSource, p: PurgePlan) -> None:
    """Inside the open transaction, before anything is read: lock the purged tables
    (PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` did) and refuse those with triggers (the
    lock also keeps one from being created until the commit)."""
    for t in p.tables:
        if isinstance(source, PostgresSource):
            target = source.qualified(t.table)
            source.conn.execute(f"LOCK TABLE {target} IN SHARE ROW EXCLUSIVE MODE")
        _refuse_triggers(source, t.table)


def _refuse_triggers(source: SqliteSource | PostgresSource, table: str) -> None:
    """A trigger (or PostgreSQL rule) on a purged table may copy the values being deleted
    into another table (an audit history, say) inside the purge's own transaction."""
    found = source.triggers(table)
    if found:
        undo = (
            "DROP TRIGGER, re-created after the purge"
            if isinstance(source, SqliteSource)
            else "ALTER TABLE … DISABLE TRIGGER USER (DROP RULE for a rule), re-enabled after"
        )
        raise ScanError(
            f"table {table!r} has {len(found)} trigger(s) ({', '.join(found)}), which may "
            "keep copies of the values a purge deletes; nothing was changed",
            field="SOURCE",
            fix=f"check what each trigger does, suspend it for the purge ({undo}), run the "
            "purge again, then scan and purge any table it copied values into",
        )


def _db_apply(
    source: SqliteSource | PostgresSource, p: PurgePlan, key: bytes
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Inside the open transaction (see :func:`_lock`): commit to the values, then null
    or drop them."""
    macs: dict[str, dict[str, str]] = {}
    for t in p.tables:
        target = source.qualified(t.table)
        cond, params = ("TRUE", ()) if p.date_range is None else source.in_range(p.date_range)
        macs[t.table] = {}
        for c in t.columns:
            cur = source.cursor()
            cur.execute(
                f"SELECT {source.text(c.column)} FROM {target} "
                f"WHERE {quote(c.column)} IS NOT NULL AND {cond} ORDER BY 1",
                params,
            )
            mac = _commit_values(key, t.table, c.column, _batches(cur.fetchmany))
            cur.close()
            if mac.count != c.values:
                raise ScanError(f"table {t.table!r} changed since the dry run", field="SOURCE",
                                fix="run the purge again")  # fmt: skip
            macs[t.table][c.column] = mac.hexdigest()
        if p.action == "drop":
            for c in t.columns:
                source.conn.execute(f"ALTER TABLE {target} DROP COLUMN {quote(c.column)}")
            continue
        sets = ", ".join(f"{quote(c.column)} = NULL" for c in t.columns)
        any_ = " OR ".join(f"{quote(c.column)} IS NOT NULL" for c in t.columns)
        cur = source.conn.cursor()
        cur.execute(f"UPDATE {target} SET {sets} WHERE ({any_}) AND {cond}", params)
        if cur.rowcount != t.records:
            raise ScanError(f"table {t.table!r} changed since the dry run", field="SOURCE",
                            fix="run the purge again")  # fmt: skip
    return macs, {}


def _file_apply(
    source: FileSource, p: PurgePlan, key: bytes, temps: dict[Path, Path]
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Write each purged file anew beside the original (``temps``: original -> new)."""
    con = duck()
    macs: dict[str, dict[str, str]] = {}
    hashes: dict[str, str] = {}
    try:
        for t in p.tables:
            path = source.path_of(t.table)
            reader = source.reader(path)
            cond = "TRUE" if p.date_range is None else source.in_range(p.date_range)
            macs[t.table] = {}
            for c in t.columns:
                res = con.execute(
                    f"SELECT CAST({quote(c.column)} AS VARCHAR) FROM {reader} "
                    f"WHERE {quote(c.column)} IS NOT NULL AND {cond} ORDER BY 1"
                )
                mac = _commit_values(key, t.table, c.column, _batches(res.fetchmany))
                macs[t.table][c.column] = mac.hexdigest()
            cols = ", ".join(quote(c.column) for c in t.columns)
            if p.action == "drop":
                select = f"SELECT * EXCLUDE ({cols}) FROM {reader}"
            else:
                nulls = ", ".join(
                    f"CASE WHEN {cond} THEN NULL ELSE {quote(c.column)} END AS {quote(c.column)}"
                    for c in t.columns
                )
                select = f"SELECT * REPLACE ({nulls}) FROM {reader}"
            tmp = path.with_name(f".{path.name}.carewall-purge{path.suffix}")
            temps[path] = tmp
            fmt = (
                "(FORMAT parquet)" if path.suffix.lower() == ".parquet" else "(FORMAT csv, HEADER)"
            )
            lit = "'" + str(tmp).replace("'", "''") + "'"
            con.execute(f"COPY ({select}) TO {lit} {fmt}")
            hashes[t.table] = "sha256:" + file_sha256(tmp)
    finally:
        con.close()
    return macs, hashes


def _post_scan(
    report: ScanReport, p: PurgePlan, elsewhere: ScanReport | None = None
) -> dict[str, Any]:
    """The re-scan MUST find none of the purged values, and nothing else of their kinds.
    ``elsewhere``: the re-scan of every other table of the source, whole (see :func:`_moved`,
    which checks it); its counts are added, and its columns still flagged (left by a purge
    limited with ``--table``) are counted apart."""
    purged = {(t.table, c.column) for t in p.tables for c in t.columns}
    remaining = sum(c.values for c in report.columns if (c.table, c.column) in purged)
    if remaining or report.flagged:
        raise ScanError(
            "the re-scan after purging still finds values of the categories purged",
            field="SOURCE",
            fix="nothing was changed; scan again and purge every column it flags",
        )
    others = elsewhere.columns if elsewhere else ()
    post: dict[str, Any] = {
        "rules": list(report.rules),
        "tables": report.tables + (elsewhere.tables if elsewhere else 0),
        "rows": report.rows + (elsewhere.rows if elsewhere else 0),
        "columns_checked": len(report.columns) + len(others),
        "values_remaining": remaining,
        "columns_flagged": len(report.flagged),
    }
    if elsewhere is not None:
        post["columns_flagged_elsewhere"] = len(elsewhere.flagged)
    if p.kind == "folder":
        post["files_not_scanned"] = len(p.skipped)
    return post


def _moved(before: ScanReport | None, after: ScanReport | None) -> None:
    """No column outside the purged tables may have gained values of the purged categories
    during the purge: the database itself (a trigger, a rule, a cascade) copied them there."""
    if after is None:
        return
    was = {(c.table, c.column, c.rule): c for c in before.columns} if before else {}
    for c in after.columns:
        b = was.get((c.table, c.column, c.rule))
        if (
            c.matched > (b.matched if b else 0)
            or (c.flagged and (b is None or not b.flagged or c.values > b.values))
        ):  # fmt: skip
            raise ScanError(
                f"after the purge, column {c.column!r} of table {c.table!r} holds more "
                f"{c.category} values than before it: something in the database (a trigger, "
                "a rule, a cascade) copied purged values there; nothing was changed",
                field="SOURCE",
                fix="find what copies them and suspend it for the purge, then purge again",
            )


def _body(
    p: PurgePlan,
    macs: Mapping[str, Mapping[str, str]],
    hashes: Mapping[str, str],
    post: Mapping[str, Any],
    holder: str,
    authority: str,
    issued: str,
    origin: str,
) -> dict[str, Any]:
    tables = []
    for t in p.tables:
        entry: dict[str, Any] = {
            "table": t.table,
            "records": t.records,
            "columns": [
                {"column": c.column, "category": c.category, "rule": c.rule, "values": c.values,
                 "commitment": macs[t.table][c.column]}
                for c in t.columns
            ],
        }  # fmt: skip
        if t.table in hashes:
            entry["sha256_after"] = hashes[t.table]
        tables.append(entry)
    return {
        "type": HEADER,
        "holder": holder,
        "issued": issued,
        "authority": authority,
        "log": origin,
        "source": {"kind": p.kind, "name": p.source},
        "action": p.action,
        "date_range": p.date_range.public() if p.date_range else None,
        "categories": p.categories,
        "records": p.records,
        "tables": tables,
        "post_purge_scan": dict(post),
    }


@dataclass(frozen=True)
class Applied:
    certificate: str  # the signed certificate file's text
    body: dict[str, Any]
    log_index: int


def apply(
    source: Source,
    p: PurgePlan,
    *,
    key: bytes,
    signer: Signer,
    holder: str,
    authority: str,
    issued: str,
    recorder: Recorder,
    rules: RuleSet | None = None,
) -> Applied:
    """Delete what ``p`` plans, prove it, sign the certificate and record it: all or nothing."""
    if not p.tables:
        raise InputError("the scan found nothing to purge", field="SOURCE")
    rules = (rules or default_rules()).only(p.categories)
    names = [t.table for t in p.tables]
    if isinstance(source, SqliteSource | PostgresSource):
        if isinstance(source, SqliteSource):
            source.conn.execute("BEGIN IMMEDIATE")
        else:
            source.conn.rollback()  # a fresh transaction: nothing read before it counts
        try:
            _lock(source, p)
            # Every other table too, whole, before and after (inside the transaction): a
            # purged value must not turn up anywhere else in the source.
            others = [t.name for t in source.tables() if t.name not in set(names)]
            before = scan(source, rules, tables=others) if others else None
            macs, hashes = _db_apply(source, p, key)
            after = scan(source, rules, tables=others) if others else None
            _moved(before, after)
            post = _post_scan(scan(source, rules, tables=names, where=p.date_range), p, after)
            body = _body(p, macs, hashes, post, holder, authority, issued, signer.name)
            cert = sign_certificate(body, signer)
            index = recorder(cert, body, source.conn.commit)
        except BaseException:
            source.conn.rollback()
            raise
        return Applied(cert, body, index)
    if not isinstance(source, FileSource):
        raise InputError("this source cannot be purged", field="SOURCE")
    temps: dict[Path, Path] = {}
    try:
        macs, hashes = _file_apply(source, p, key, temps)
        fresh = FileSource(source.root, list(temps.values()), source.kind, list(names))
        try:
            report = scan(fresh, rules, tables=names, where=p.date_range)
        finally:
            fresh.close()
        post = _post_scan(report, p)
        body = _body(p, macs, hashes, post, holder, authority, issued, signer.name)
        cert = sign_certificate(body, signer)

        def commit() -> None:
            for original, tmp in temps.items():
                os.replace(tmp, original)

        index = recorder(cert, body, commit)
    finally:
        for tmp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return Applied(cert, body, index)
