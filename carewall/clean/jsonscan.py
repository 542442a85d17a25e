"""Look inside columns holding JSON: each key path is judged like a column.

Per table, a probe reads the first :data:`PROBE_ROWS` rows (within the date range) of every
column; a column is a **JSON column** when at least :data:`JSON_SHARE` of its non-blank
sampled values are JSON objects or arrays. Its values are then all read (streamed,
:data:`JSON_BATCH_ROWS` rows at a time) and walked within limits: :data:`MAX_DEPTH` levels
of nesting, :data:`MAX_MEMBERS` keys per object or items per array, :data:`MAX_NODES`
members per value, :data:`MAX_PATHS` key paths per column; a value beyond them is read in
part and counted as ``cut``. An object holding more than :data:`MAX_FIELDS` distinct keys at
one place (across the column) is a map keyed by data, and its keys show as ``*`` (but for
keys the rules' name patterns know, such as ``nationality``); a key that looks like data
shows as ``#`` (:func:`carewall.clean.jsonvalue.segment`).

Each key path holding values (``nationality``, ``extra[].birth_country``) is judged by the
rules' name patterns on its last key, on its keys joined (``birth.country`` ->
``birthcountry``) and on the column's name and its keys joined (``country`` holding
``{"of_birth": …}``); the values under it by the rule's recognisers, share and minimum, as
a column's values are. Counts only, as for columns.
"""

from __future__ import annotations

from typing import Any

import duckdb

from carewall.clean.jsonvalue import (
    KeyPath,
    Num,
    Obj,
    Step,
    looks_like_json,
    parse,
    segment,
)
from carewall.clean.report import ColumnResult, JsonColumn
from carewall.clean.rules import BLANKS, Rule, RuleSet, normalise_value
from carewall.clean.sources import DateRange, Source, Table

__all__ = [
    "JSON_BATCH_ROWS",
    "JSON_SHARE",
    "MAX_DEPTH",
    "MAX_FIELDS",
    "MAX_MEMBERS",
    "MAX_NODES",
    "MAX_PATHS",
    "PROBE_ROWS",
    "json_columns",
    "path_rules",
    "scan_json",
]

PROBE_ROWS = 1_000
JSON_SHARE = 0.5
PROBE_PARSE_CHARS = 65_536  # longer sampled values are judged by their first and last bracket
JSON_BATCH_ROWS = 4_096  # JSON values are longer than codes: fewer rows per batch
MAX_DEPTH = 16
MAX_MEMBERS = 1_000
MAX_NODES = 10_000
MAX_FIELDS = 256
MAX_PATHS = 500
MAX_DISTINCT = 1_000


def _release(con: duckdb.DuckDBPyConnection, rel: str) -> None:
    if not rel.startswith("("):
        con.unregister(rel)


def json_columns(
    con: duckdb.DuckDBPyConnection, source: Source, table: Table, where: DateRange | None
) -> list[str]:
    """The columns of ``table`` whose sampled values are mostly JSON objects or arrays."""
    columns = list(table.columns)
    seen, found = [0] * len(columns), [0] * len(columns)
    rel = source.relation(con, table, columns, where, limit=PROBE_ROWS)
    try:
        res = con.execute(f"SELECT * FROM {rel}")
        while rows := res.fetchmany(256):
            for row in rows:
                for i, v in enumerate(row):
                    if v is None or not v.strip(BLANKS):
                        continue
                    seen[i] += 1
                    if len(v) > PROBE_PARSE_CHARS:
                        found[i] += looks_like_json(v)
                    elif parse(v) is not None:
                        found[i] += 1
    finally:
        _release(con, rel)
    return [c for c, n, j in zip(columns, seen, found, strict=True) if n and j >= JSON_SHARE * n]


def path_rules(rules: RuleSet, column: str, path: KeyPath) -> list[Rule]:
    """The rules whose name patterns the key path matches (see the module)."""
    keys = [s for s in path if isinstance(s, str)]
    inner = ".".join(keys)
    names = [keys[-1], inner] if keys else []
    names.append(f"{column}.{inner}" if inner else column)
    return [r for r in rules.rules if any(r.names_match(n) for n in dict.fromkeys(names))]


class _Stats:
    """The values under one key path that rules name."""

    __slots__ = ("distinct", "matched", "rules", "values")

    def __init__(self, rules: list[Rule], unions: int) -> None:
        self.rules = rules
        self.values = 0
        self.matched = [0] * unions
        self.distinct: set[str] = set()

    def merge(self, other: _Stats) -> None:
        self.values += other.values
        self.matched = [a + b for a, b in zip(self.matched, other.matched, strict=True)]
        for v in other.distinct:
            if len(self.distinct) >= MAX_DISTINCT:
                break
            self.distinct.add(v)


class _Walk:
    """Every value of one JSON column: its key paths and, under those rules name, counts of
    their values (``stats`` maps a key path no rule names to None)."""

    def __init__(self, column: str, rules: RuleSet, recognised: list[frozenset[str]]) -> None:
        self.column = column
        self.rules = rules
        self.recognised = recognised
        self.stats: dict[KeyPath, _Stats | None] = {}
        self.keys_at: dict[KeyPath, set[str]] = {}
        self.maps: set[KeyPath] = set()
        self.named_keys: dict[str, bool] = {}
        self.values = self.json = self.unread = self.cut = 0
        self._budget = 0
        self._cut = False

    def add(self, text: str) -> None:
        self.values += 1
        if not text.strip(BLANKS):
            return
        value = parse(text)
        if value is None:
            self.unread += 1
            return
        self.json += 1
        self._budget, self._cut = MAX_NODES, False
        self._walk(value, (), 0)
        self.cut += self._cut

    def _walk(self, value: list[Any], path: KeyPath, depth: int) -> None:
        if depth >= MAX_DEPTH:
            self._cut = True
            return
        if len(value) > MAX_MEMBERS:
            self._cut = True
        is_obj = isinstance(value, Obj)
        for member in value[:MAX_MEMBERS]:
            self._budget -= 1
            if self._budget < 0:
                self._cut = True
                return
            if is_obj:
                key, item = member
                child = (*path, self._segment(path, key))
            else:
                item, child = member, (*path, Step.ARRAY)
            if isinstance(item, list):
                self._walk(item, child, depth + 1)
            elif item is not None:
                self._scalar(child, item)

    def _named(self, key: str) -> bool:
        """Whether a rule's name patterns know the key itself (``nationality``): such a key
        is a field's name, kept in a path even through a map (see :meth:`_segment`)."""
        named = self.named_keys.get(key)
        if named is None:
            named = any(r.names_match(key) for r in self.rules.rules)
            if len(self.named_keys) < 10_000:
                self.named_keys[key] = named
        return named

    def _segment(self, parent: KeyPath, key: str) -> str | Step:
        if parent in self.maps:
            return key if self._named(key) else Step.ANY
        seg = segment(key)
        if isinstance(seg, str):
            known = self.keys_at.setdefault(parent, set())
            if seg not in known:
                if len(known) >= MAX_FIELDS:
                    self._collapse(parent)
                    return key if self._named(key) else Step.ANY
                known.add(seg)
        return seg

    def _collapse(self, parent: KeyPath) -> None:
        """``parent`` holds more distinct keys than a record would: it is a map keyed by
        data, and every key path through it takes ``*`` there, but for keys the rules'
        name patterns know (a record with very many fields keeps its ``nationality``)."""
        n = len(parent)
        self.maps.add(parent)

        def moved(path: KeyPath) -> KeyPath | None:
            if len(path) <= n or path[:n] != parent or path[n] is Step.ANY:
                return None
            step = path[n]
            if isinstance(step, str) and self._named(step):
                return None
            return (*parent, Step.ANY, *path[n + 1 :])

        for path in list(self.stats):
            new = moved(path)
            if new is not None:
                st = self.stats.pop(path)
                if new not in self.stats:
                    self.stats[new] = self._new(new)
                target = self.stats[new]
                if target is not None and st is not None:
                    target.merge(st)
        for path in list(self.keys_at):
            new = moved(path)
            if new is not None:
                self.keys_at.setdefault(new, set()).update(self.keys_at.pop(path))
        for path in list(self.maps):
            new = moved(path)
            if new is not None:
                self.maps.discard(path)
                self.maps.add(new)
        self.keys_at.pop(parent, None)

    def _new(self, path: KeyPath) -> _Stats | None:
        found = path_rules(self.rules, self.column, path)
        return _Stats(found, len(self.recognised)) if found else None

    def _scalar(self, path: KeyPath, value: Any) -> None:
        try:
            st = self.stats[path]
        except KeyError:
            if len(self.stats) >= MAX_PATHS:
                self._cut = True
                return
            st = self.stats[path] = self._new(path)
        if st is None:
            return
        if isinstance(value, str):
            text = value
        elif isinstance(value, Num):
            text = value.text
        else:
            text = "true" if value else "false"
        norm = normalise_value(text)
        st.values += 1
        for i, known in enumerate(self.recognised):
            if norm in known:
                st.matched[i] += 1
        if len(st.distinct) < MAX_DISTINCT:
            st.distinct.add(text)


def scan_json(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    table: Table,
    rules: RuleSet,
    where: DateRange | None,
    rows: int,
) -> tuple[list[ColumnResult], list[JsonColumn]]:
    """The key paths of ``table``'s JSON columns that rules name, and what was read."""
    columns = json_columns(con, source, table, where)
    if not columns:
        return [], []
    unions = list(dict.fromkeys(r.values for r in rules.rules))
    recognised = [frozenset().union(*(rules.recognisers[n] for n in u)) for u in unions]
    walks = [_Walk(c, rules, recognised) for c in columns]
    rel = source.relation(con, table, columns, where, batch=JSON_BATCH_ROWS)
    try:
        res = con.execute(f"SELECT * FROM {rel}")
        while batch := res.fetchmany(JSON_BATCH_ROWS):
            for row in batch:
                for walk, value in zip(walks, row, strict=True):
                    if value is not None:
                        walk.add(value)
    finally:
        _release(con, rel)
    results = []
    for w in walks:
        for path, st in w.stats.items():
            if st is None:
                continue
            for rule in st.rules:
                matched = st.matched[unions.index(rule.values)]
                flagged = rule.holds(st.values, matched)
                results.append(
                    ColumnResult(table.name, w.column, rule.category, rule.id, rows,
                                 st.values, matched, len(st.distinct), flagged, path)
                )  # fmt: skip
    summaries = [
        JsonColumn(table.name, w.column, w.values, w.json, w.unread, w.cut, len(w.stats))
        for w in walks
    ]
    return results, summaries
