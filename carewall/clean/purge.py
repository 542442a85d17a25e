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

A key path flagged inside a JSON column is removed from each JSON value holding it, the
column kept (:mod:`carewall.clean.purge_json`), in the same transaction or new file.
The plan is :mod:`carewall.clean.purge_plan`; the re-scan's checks and the certificate's
body, :mod:`carewall.clean.purge_proof`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import duckdb

from carewall.clean import purge_json
from carewall.clean.certificate import ValueCommitment, sign_certificate
from carewall.clean.databases import PostgresSource, SqliteSource
from carewall.clean.jsonscan import JSON_BATCH_ROWS
from carewall.clean.jsonvalue import KeyPath
from carewall.clean.purge_plan import Action, PlannedColumn, PlannedTable, PurgePlan, plan
from carewall.clean.purge_proof import body as certificate_body
from carewall.clean.purge_proof import moved, post_scan
from carewall.clean.rules import RuleSet, default_rules
from carewall.clean.scanner import scan
from carewall.clean.sources import (
    BATCH_ROWS,
    FileSource,
    Source,
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

# per table, per (column, key path or None): the commitment to what was deleted there
Macs = dict[str, dict[tuple[str, KeyPath | None], str]]


class Recorder(Protocol):
    """Records a signed certificate in the log. MUST call ``commit`` (the source's commit)
    after appending its entry and before committing it, and raise if anything fails."""

    def __call__(
        self, certificate: str, body: Mapping[str, Any], commit: Callable[[], None]
    ) -> int: ...


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


def _changed(table: str) -> ScanError:
    return ScanError(f"table {table!r} changed since the dry run", field="SOURCE",
                     fix="run the purge again")  # fmt: skip


def _keyed(t: PlannedTable) -> list[tuple[str, KeyPath]]:
    return [(c.column, c.key_path or ()) for c in t.keyed]


def _keyed_macs(
    removed: purge_json.Removed, key: bytes, t: PlannedTable, counts: purge_json.Counts
) -> dict[tuple[str, KeyPath | None], str]:
    """The commitments to the members removed per key path, checked against the plan."""
    out: dict[tuple[str, KeyPath | None], str] = {}
    for k, c in enumerate(t.keyed):
        if counts.keyed[k] != c.values:
            raise _changed(t.table)
        out[(c.column, c.key_path)] = removed.commitment(key, t.table, c.label, k).hexdigest()
    return out


def _db_apply(source: SqliteSource | PostgresSource, p: PurgePlan, key: bytes) -> Macs:
    """Inside the open transaction (see :func:`_lock`): commit to the values, then remove
    the key paths from JSON columns, then null or drop the columns."""
    macs: Macs = {}
    for t in p.tables:
        target = source.qualified(t.table)
        cond, params = ("TRUE", ()) if p.date_range is None else source.in_range(p.date_range)
        macs[t.table] = {}
        plain = t.plain
        for c in plain:
            cur = source.cursor()
            cur.execute(
                f"SELECT {source.text(c.column)} FROM {target} "
                f"WHERE {quote(c.column)} IS NOT NULL AND {cond} ORDER BY 1",
                params,
            )
            mac = _commit_values(key, t.table, c.column, _batches(cur.fetchmany))
            cur.close()
            if mac.count != c.values:
                raise _changed(t.table)
            macs[t.table][(c.column, None)] = mac.hexdigest()
        only_json = 0
        if t.keyed:
            table = next(x for x in source.tables() if x.name == t.table)
            removed = purge_json.Removed()
            try:
                counts = purge_json.db_rewrite(
                    source, table, [c.column for c in plain], _keyed(t), p.date_range, removed
                )
                macs[t.table].update(_keyed_macs(removed, key, t, counts))
            finally:
                removed.close()
            only_json = counts.records
        if p.action == "drop":
            for c in plain:
                source.conn.execute(f"ALTER TABLE {target} DROP COLUMN {quote(c.column)}")
            continue
        rowcount = 0
        if plain:
            sets = ", ".join(f"{quote(c.column)} = NULL" for c in plain)
            any_ = " OR ".join(f"{quote(c.column)} IS NOT NULL" for c in plain)
            cur = source.conn.cursor()
            cur.execute(f"UPDATE {target} SET {sets} WHERE ({any_}) AND {cond}", params)
            rowcount = cur.rowcount
        if rowcount + only_json != t.records:
            raise _changed(t.table)
    return macs


def _copy(source: FileSource, p: PurgePlan, t: PlannedTable, tmp: Path) -> purge_json.Counts | None:
    """Write ``t``'s file anew at ``tmp``, without what the plan deletes; with key paths to
    remove, through Arrow (the counts of what was removed, else None)."""
    path = source.path_of(t.table)
    reader = source.reader(path)
    cond = "TRUE" if p.date_range is None else source.in_range(p.date_range)
    cols = ", ".join(quote(c.column) for c in t.plain)
    if not t.plain:
        star = "*"
    elif p.action == "drop":
        star = f"* EXCLUDE ({cols})"
    else:
        nulls = ", ".join(
            f"CASE WHEN {cond} THEN NULL ELSE {quote(c.column)} END AS {quote(c.column)}"
            for c in t.plain
        )
        star = f"* REPLACE ({nulls})"
    fmt = "(FORMAT parquet)" if path.suffix.lower() == ".parquet" else "(FORMAT csv, HEADER)"
    lit = "'" + str(tmp).replace("'", "''") + "'"
    con, out = duck(), duck()
    try:
        if not t.keyed:
            con.execute(f"COPY (SELECT {star} FROM {reader}) TO {lit} {fmt}")
            return None
        counts = purge_json.Counts([], [0] * len(t.keyed))
        rows = con.sql(
            f"SELECT {star}, coalesce({cond}, FALSE) AS {quote(purge_json.IN_RANGE)} FROM {reader}"
        ).to_arrow_reader(JSON_BATCH_ROWS)
        out.register("cw_out", purge_json.rewrite_batches(rows, _keyed(t), counts))
        try:
            out.execute(f"COPY (SELECT * FROM cw_out) TO {lit} {fmt}")
        except duckdb.Error as e:  # its message may quote a value: never shown
            raise ScanError(
                f"rewriting the JSON of {t.table!r} failed ({type(e).__name__}); nothing was "
                "changed",
                field="SOURCE",
                fix="check the file is readable, or remove the key paths the scan names yourself",
            ) from None
        return counts
    finally:
        out.close()
        con.close()


def _file_apply(
    source: FileSource, p: PurgePlan, key: bytes, temps: dict[Path, Path]
) -> tuple[Macs, dict[str, str]]:
    """Write each purged file anew beside the original (``temps``: original -> new)."""
    con = duck()
    macs: Macs = {}
    hashes: dict[str, str] = {}
    try:
        for t in p.tables:
            path = source.path_of(t.table)
            reader = source.reader(path)
            cond = "TRUE" if p.date_range is None else source.in_range(p.date_range)
            macs[t.table] = {}
            for c in t.plain:
                res = con.execute(
                    f"SELECT CAST({quote(c.column)} AS VARCHAR) FROM {reader} "
                    f"WHERE {quote(c.column)} IS NOT NULL AND {cond} ORDER BY 1"
                )
                mac = _commit_values(key, t.table, c.column, _batches(res.fetchmany))
                macs[t.table][(c.column, None)] = mac.hexdigest()
            if t.keyed:
                table = next(x for x in source.tables() if x.name == t.table)
                removed = purge_json.Removed()
                try:
                    counts = purge_json.count(source, table, [], _keyed(t), p.date_range, removed)
                    macs[t.table].update(_keyed_macs(removed, key, t, counts))
                finally:
                    removed.close()
            tmp = path.with_name(f".{path.name}.carewall-purge{path.suffix}")
            temps[path] = tmp
            written = _copy(source, p, t, tmp)
            if written is not None and written.keyed != [c.values for c in t.keyed]:
                raise _changed(t.table)
            hashes[t.table] = "sha256:" + file_sha256(tmp)
    finally:
        con.close()
    return macs, hashes


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
            macs = _db_apply(source, p, key)
            after = scan(source, rules, tables=others) if others else None
            moved(before, after)
            post = post_scan(scan(source, rules, tables=names, where=p.date_range), p, after)
            body = certificate_body(p, macs, {}, post, holder, authority, issued, signer.name)
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
        post = post_scan(report, p)
        body = certificate_body(p, macs, hashes, post, holder, authority, issued, signer.name)
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
