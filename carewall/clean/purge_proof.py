"""The proof a purge gives: the re-scan's checks and counts, and the certificate's body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from carewall.clean.certificate import HEADER
from carewall.clean.jsonvalue import KeyPath
from carewall.clean.purge_plan import PurgePlan
from carewall.clean.report import ScanReport
from carewall.errors import ScanError

__all__ = ["Macs", "body", "moved", "post_scan"]

# per table, per (column, key path or None): the commitment to the values deleted
Macs = Mapping[str, Mapping[tuple[str, KeyPath | None], str]]


def post_scan(
    report: ScanReport, p: PurgePlan, elsewhere: ScanReport | None = None
) -> dict[str, Any]:
    """The re-scan MUST find none of the purged values, and nothing else of their kinds.
    ``elsewhere``: the re-scan of every other table of the source, whole (see :func:`moved`,
    which checks it); its counts are added, and its columns still flagged (left by a purge
    limited with ``--table``) are counted apart. For key paths removed from JSON columns,
    ``json_values_not_read`` counts the values of those columns the re-scan could not read
    (or read only in part), so could not check."""
    purged = {(t.table, c.column, c.key_path) for t in p.tables for c in t.columns}
    remaining = sum(c.values for c in report.columns if (c.table, c.column, c.key_path) in purged)
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
    keyed = {(t.table, c.column) for t in p.tables for c in t.keyed}
    if keyed:
        post["json_values_not_read"] = sum(
            j.unread + j.cut for j in report.json_columns if (j.table, j.column) in keyed
        )
    if elsewhere is not None:
        post["columns_flagged_elsewhere"] = len(elsewhere.flagged)
    if p.kind == "folder":
        post["files_not_scanned"] = len(p.skipped)
    return post


def moved(before: ScanReport | None, after: ScanReport | None) -> None:
    """No column (or key path) outside the purged tables may have gained values of the
    purged categories during the purge: the database itself (a trigger, a rule, a cascade)
    copied them there."""
    if after is None:
        return
    was = {(c.table, c.column, c.key_path, c.rule): c for c in before.columns} if before else {}
    for c in after.columns:
        b = was.get((c.table, c.column, c.key_path, c.rule))
        if (
            c.matched > (b.matched if b else 0)
            or (c.flagged and (b is None or not b.flagged or c.values > b.values))
        ):  # fmt: skip
            raise ScanError(
                f"after the purge, column {c.where!r} of table {c.table!r} holds more "
                f"{c.category} values than before it: something in the database (a trigger, "
                "a rule, a cascade) copied purged values there; nothing was changed",
                field="SOURCE",
                fix="find what copies them and suspend it for the purge, then purge again",
            )


def body(
    p: PurgePlan,
    macs: Macs,
    hashes: Mapping[str, str],
    post: Mapping[str, Any],
    holder: str,
    authority: str,
    issued: str,
    origin: str,
) -> dict[str, Any]:
    """The certificate's body. A column entry with ``key_path`` (and ``action``
    ``remove_key``) had that key removed from its JSON values; its ``values`` counts the
    members removed, and its commitment is keyed by the key path as shown."""
    tables = []
    for t in p.tables:
        entry: dict[str, Any] = {
            "table": t.table,
            "records": t.records,
            "columns": [
                {**c.to_json(), "commitment": macs[t.table][(c.column, c.key_path)]}
                for c in t.columns
            ],
        }
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
