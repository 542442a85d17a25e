"""Purging a key path from a JSON column: the column stays, the key goes.

A flagged key path (``demographics.nationality``) cannot be nulled or dropped without
deleting the lawful keys beside it, so the purge removes the key (with its value) from each
JSON value holding it, within the date range, and writes the rest back as compact JSON
(:func:`carewall.clean.jsonvalue.strip`): same members in the same order, strings and
numbers as written; only whitespace differs. Values that are not JSON the scan reads (see
:mod:`carewall.clean.jsonvalue`) are left as they are, and the certificate counts them.

- SQLite and PostgreSQL: inside the purge's transaction, each row holding the column is
  read (SQLite by ``rowid``, in batches; PostgreSQL through a server-side cursor, which does
  not see the purge's own updates) and rewritten by its ``rowid`` or ``ctid``.
- CSV and Parquet: the purge's new file is written through Arrow, each batch's JSON values
  rewritten on the way.

The removed values are committed to (HMAC, as a column's) in ascending order of their UTF-8
bytes, sorted by DuckDB (which spills to disk): memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]

from carewall.clean.certificate import ValueCommitment
from carewall.clean.databases import PostgresSource, SqliteSource
from carewall.clean.jsonscan import JSON_BATCH_ROWS
from carewall.clean.jsonvalue import KeyPath, Target, removal, strip
from carewall.clean.rules import BLANKS
from carewall.clean.sources import (
    BATCH_ROWS,
    DateRange,
    Source,
    Table,
    duck,
    quote,
)
from carewall.errors import ScanError

__all__ = ["Counts", "Removed", "count", "db_rewrite", "rewrite_batches"]

Keyed = tuple[str, KeyPath]  # a JSON column and a key path inside it


@dataclass
class Counts:
    plain: list[int]  # non-null values per plain (nulled or dropped) column
    keyed: list[int]  # members removed per key path
    records: int = 0  # rows that change
    unread: int = 0  # non-blank values of the JSON columns not read as JSON


def _targets(keyed: Sequence[Keyed]) -> tuple[list[str], list[list[tuple[int, Target]]]]:
    """The JSON columns, and per column the key paths to remove: (index in ``keyed``, what
    :func:`strip` removes)."""
    columns: list[str] = []
    per: list[list[tuple[int, Target]]] = []
    for k, (column, path) in enumerate(keyed):
        target = removal(path)
        if target is None:
            raise ValueError("a key path naming no key is purged as its column")
        if column not in columns:
            columns.append(column)
            per.append([])
        per[columns.index(column)].append((k, target))
    return columns, per


class Removed:
    """The values removed per key path, kept in DuckDB to be committed to in order."""

    def __init__(self) -> None:
        self.con = duck()
        self.con.execute("CREATE TEMP TABLE cw_removed (k INTEGER, v BLOB)")
        self._k: list[int] = []
        self._v: list[bytes] = []

    def add(self, k: int, values: Sequence[str]) -> None:
        for v in values:
            self._k.append(k)
            self._v.append(v.encode("utf-8", "surrogatepass"))
        if len(self._k) >= BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._k:
            return
        batch = pa.table({"k": pa.array(self._k, pa.int32()), "v": pa.array(self._v, pa.binary())})
        self.con.register("cw_batch", batch)
        self.con.execute("INSERT INTO cw_removed SELECT k, v FROM cw_batch")
        self.con.unregister("cw_batch")
        self._k, self._v = [], []

    def commitment(self, key: bytes, table: str, label: str, k: int) -> ValueCommitment:
        """HMAC over the values removed under key path ``k``, ``label`` standing for the
        column (``demographics.nationality``)."""
        self._flush()
        res = self.con.execute("SELECT v FROM cw_removed WHERE k = ? ORDER BY v", [k])
        mac = ValueCommitment(key, table, label)
        while rows := res.fetchmany(BATCH_ROWS):
            mac.add(bytes(r[0]).decode("utf-8", "surrogatepass") for r in rows)
        return mac

    def close(self) -> None:
        self.con.close()


def _strip_row(
    texts: Sequence[str | None],
    per: list[list[tuple[int, Target]]],
    counts: Counts,
    removed: Removed | None,
) -> dict[int, str]:
    """Strip one row's JSON values: the new text per changed column (by index)."""
    changed: dict[int, str] = {}
    for j, text in enumerate(texts):
        if text is None:
            continue
        got = strip(text, [t for _, t in per[j]])
        if got is None:
            counts.unread += bool(text.strip(BLANKS))
            continue
        new, lists = got
        for (k, _), values in zip(per[j], lists, strict=True):
            counts.keyed[k] += len(values)
            if removed is not None and values:
                removed.add(k, values)
        if new is not None:
            changed[j] = new
    return changed


def count(
    source: Source,
    table: Table,
    plain: Sequence[str],
    keyed: Sequence[Keyed],
    where: DateRange | None,
    removed: Removed | None = None,
) -> Counts:
    """What a purge changes in ``table``: plain columns' values, members removed per key
    path, and rows (``removed`` collects the removed values, for the commitments)."""
    columns, per = _targets(keyed)
    counts = Counts([0] * len(plain), [0] * len(keyed))
    n = len(plain)
    con = duck()
    try:
        rel = source.relation(con, table, [*plain, *columns], where, batch=JSON_BATCH_ROWS)
        res = con.execute(f"SELECT * FROM {rel}")
        while rows := res.fetchmany(JSON_BATCH_ROWS):
            for row in rows:
                has_plain = False
                for i in range(n):
                    if row[i] is not None:
                        counts.plain[i] += 1
                        has_plain = True
                changed = _strip_row(row[n:], per, counts, removed)
                counts.records += has_plain or bool(changed)
    except duckdb.Error as e:
        raise ScanError(
            f"reading table {table.name!r} failed ({type(e).__name__})",
            field="SOURCE",
            fix="check the source is readable; nothing was changed",
        ) from e
    finally:
        con.close()
    return counts


# ----- databases -----------------------------------------------------------------------------


def _rowid(source: SqliteSource, table: Table, target: str) -> str:
    taken = {c.lower() for c in table.columns}
    for name in ("rowid", "_rowid_", "oid"):
        if name in taken:
            continue
        try:
            source.conn.execute(f"SELECT {name} FROM {target} LIMIT 0")
        except Exception:
            break
        return name
    raise ScanError(
        f"table {table.name!r} has no rowid (it is WITHOUT ROWID, or its columns hide it), so "
        "the purge cannot rewrite its JSON values one row at a time; nothing was changed",
        field="SOURCE",
        fix="copy the table into one with a rowid, or remove the key paths the scan names "
        "from its JSON yourself, then scan again",
    )


def db_rewrite(
    source: SqliteSource | PostgresSource,
    table: Table,
    plain: Sequence[str],
    keyed: Sequence[Keyed],
    where: DateRange | None,
    removed: Removed,
) -> Counts:
    """Inside the purge's transaction: remove the key paths from ``table``'s JSON values
    within ``where``. ``records`` counts the rows rewritten that hold no plain value (the
    UPDATE nulling those counts the others)."""
    columns, per = _targets(keyed)
    counts = Counts([], [0] * len(keyed))
    target = source.qualified(table.name)
    cond, params = ("TRUE", ()) if where is None else source.in_range(where)
    has_plain = " OR ".join(f"{quote(c)} IS NOT NULL" for c in plain) or "FALSE"
    any_json = " OR ".join(f"{quote(c)} IS NOT NULL" for c in columns)
    texts = ", ".join(source.text(c) for c in columns)
    pg = isinstance(source, PostgresSource)
    rid = _rowid(source, table, target) if isinstance(source, SqliteSource) else "ctid"
    head = f"SELECT {rid}{'::text' if pg else ''}, ({has_plain}), {texts} FROM {target} "
    where_sql = f"WHERE ({any_json}) AND {cond}"
    mark, by = ("%s", "ctid = %s::tid") if pg else ("?", f"{rid} = ?")

    def rewrite(rows: Sequence[Any]) -> None:
        groups: dict[tuple[int, ...], list[tuple[Any, ...]]] = {}
        for rowid, plain_held, *values in rows:
            changed = _strip_row(values, per, counts, removed)
            if changed:
                which = tuple(sorted(changed))
                groups.setdefault(which, []).append((*(changed[j] for j in which), rowid))
                counts.records += not plain_held
        for which, args in groups.items():
            sets = ", ".join(f"{quote(columns[j])} = {mark}" for j in which)
            try:
                source.conn.cursor().executemany(f"UPDATE {target} SET {sets} WHERE {by}", args)
            except Exception as e:  # its message may quote a value: never shown
                raise _refused(table, e) from None

    if pg:
        cur = source.cursor()  # server-side: it reads as of its start, not our updates
        try:
            try:
                cur.execute(head + where_sql, params)
                rows = cur.fetchmany(JSON_BATCH_ROWS)
            except Exception as e:
                raise _refused(table, e) from None
            while rows:
                rewrite(rows)
                rows = cur.fetchmany(JSON_BATCH_ROWS)
        finally:
            cur.close()
        return counts
    last: Any = None
    while True:
        after = "" if last is None else f" AND {rid} > ?"
        try:
            got = source.conn.execute(
                f"{head}{where_sql}{after} ORDER BY {rid} LIMIT {JSON_BATCH_ROWS}",
                (*params, *(() if last is None else (last,))),
            ).fetchall()
        except Exception as e:
            raise _refused(table, e) from None
        if not got:
            return counts
        last = got[-1][0]
        rewrite(got)


def _refused(table: Table, e: Exception) -> ScanError:
    """The database's own message may quote a value: only its kind is shown."""
    return ScanError(
        f"the database refused to read or rewrite the JSON of table {table.name!r} "
        f"({type(e).__name__}); nothing was changed",
        field="SOURCE",
        fix="check what its constraints (a unique index, a CHECK) require of the JSON "
        "columns, and that the date column holds dates; or remove the key paths the scan "
        "names yourself",
    )


# ----- files ---------------------------------------------------------------------------------

IN_RANGE = "__carewall_in_range"


def rewrite_batches(
    reader: pa.RecordBatchReader, keyed: Sequence[Keyed], counts: Counts
) -> pa.RecordBatchReader:
    """``reader``'s batches (with the boolean column :data:`IN_RANGE`) with the key paths
    removed from the JSON columns' values in range, and without :data:`IN_RANGE`."""
    columns, per = _targets(keyed)
    schema = reader.schema.remove(reader.schema.get_field_index(IN_RANGE))

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            in_range = batch.column(IN_RANGE).to_pylist()
            values = {c: batch.column(c).to_pylist() for c in columns}
            for r, inside in enumerate(in_range):
                if not inside:
                    continue
                row = [values[c][r] for c in columns]
                texts = [v if isinstance(v, str) else None for v in row]
                for j, new in _strip_row(texts, per, counts, None).items():
                    values[columns[j]][r] = new
            arrays = [
                pa.array(values[f.name], f.type) if f.name in values else batch.column(f.name)
                for f in schema
            ]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())
