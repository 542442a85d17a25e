"""``carewall scan``, ``carewall purge`` and ``carewall certificate verify`` (issue 9, Clean).

``scan SOURCE`` lists the columns holding nationality, country of birth or immigration
status (or any category asked for): a Rich table, or JSON with ``--json``. ``purge SOURCE``
is a dry run that says exactly what would change; ``--apply`` deletes it in one transaction
per source, proves it with a re-scan, writes a signed deletion certificate and logs its
SHA-256 in a ``deletion`` entry. Counts only, never a value, on every screen.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from carewall.clean import purge as purging
from carewall.clean.rules import RuleSet, load_rules
from carewall.clean.scanner import ScanProgress, ScanReport, scan
from carewall.clean.sources import DateRange, Source, open_source
from carewall.clean.verify import verify_certificate
from carewall.cli import err_console, main, out_console
from carewall.cli.options import db_and_key
from carewall.errors import InputError
from carewall.service import Service
from carewall.service import logentries as le
from carewall.service.deletions import deletion_key, deletion_signer, recorder
from carewall.text import check_text

__all__ = ["certificate", "purge", "scan_command"]


def _source_options(f: Any) -> Any:
    for option in reversed(
        [
            click.argument("source"),
            click.option(
                "--category",
                "categories",
                multiple=True,
                metavar="CATEGORY",
                help="Only this category (repeat for more); default: every category the "
                "rules find (nationality, country_of_birth, immigration_status).",
            ),
            click.option(
                "--rules",
                "rules_files",
                multiple=True,
                type=click.Path(dir_okay=False, exists=True),
                help="A TOML file of extra rules and recognisers (repeatable).",
            ),
            click.option(
                "--table", "tables", multiple=True, help="Only this table or file (repeatable)."
            ),
            click.option("--date-column", default=None, help="Limit to rows whose COLUMN date…"),
            click.option("--from", "start", default=None, metavar="DATE", help="…is from DATE…"),
            click.option("--to", "end", default=None, metavar="DATE", help="…to DATE (included)."),
            click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table."),
        ]
    ):
        f = option(f)
    return f


def _day(value: str | None, field: str) -> date:
    if value is None:
        raise InputError("is needed with --date-column", field=field, fix="e.g. 2016-01-01")
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise InputError("must be a date, YYYY-MM-DD", field=field) from e


def _range(column: str | None, start: str | None, end: str | None) -> DateRange | None:
    if column is None:
        if start or end:
            raise InputError("needs --date-column", field="--from", fix="name the date column")
        return None
    r = DateRange(column, _day(start, "--from"), _day(end, "--to"))
    if r.end < r.start:
        raise InputError("is before --from", field="--to", fix="give the range in order")
    return r


@contextmanager
def _progress() -> Iterator[ScanProgress]:
    with Progress(
        SpinnerColumn(),
        TextColumn("scanning {task.description}"),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(table: str, rows: int, done: bool) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=None)
            bar.update(tasks[table], completed=rows)
            if done:
                bar.remove_task(tasks.pop(table))

        yield update


def _scan(
    source: Source, rules: RuleSet, categories: tuple[str, ...], tables: tuple[str, ...],
    where: DateRange | None,
) -> ScanReport:  # fmt: skip
    with _progress() as progress:
        return scan(
            source, rules, categories=categories or None, tables=tables or None, where=where,
            progress=progress,
        )  # fmt: skip


def _report_table(report: ScanReport) -> Table:
    where = f", {report.date_range.public()}" if report.date_range else ""
    table = Table(
        title=f"carewall scan: {report.source} ({report.kind}), {report.tables:,} table(s), "
        f"{report.rows:,} rows{where}",
        title_justify="left",
    )
    for name in ("table", "column", "category", "rows with values", "matched", "share", "rule"):
        table.add_column(name, justify="right" if name in ("rows with values", "matched",
                         "share") else "left")  # fmt: skip
    for c in report.columns:
        style = "bold red" if c.flagged else "dim"
        table.add_row(
            Text(c.table), Text(c.where), Text(c.category if c.flagged else f"({c.category}?)"),
            f"{c.values:,}", f"{c.matched:,}", f"{c.share:.0%}", Text(c.rule), style=style,
        )  # fmt: skip
    return table


@main.command("scan")
@_source_options
def scan_command(
    source: str, categories: tuple[str, ...], rules_files: tuple[str, ...],
    tables: tuple[str, ...], date_column: str | None, start: str | None, end: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Find personal data of the never-disclosed categories in SOURCE: a SQLite file, a
    postgresql:// URL, a CSV or Parquet file, or a folder of them. Lists each column whose
    name and values match a rule, with counts (never values). Changes nothing."""
    where = _range(date_column, start, end)
    rules = load_rules(rules_files)
    src = open_source(source)
    try:
        report = _scan(src, rules, categories, tables, where)
    finally:
        src.close()
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    out_console.print(_report_table(report))
    _json_note(report)
    found = len(report.flagged)
    click.echo(
        f"{found} column(s) hold personal data of these categories; "
        + ("remove them with `carewall purge`." if found else "nothing to purge.")
    )


def _json_note(report: ScanReport) -> None:
    """Which columns were looked into as JSON, and how many values could not be read."""
    if not report.json_columns:
        return
    names = ", ".join(f"{j.table}.{j.column}" for j in report.json_columns[:10])
    more = len(report.json_columns) - 10
    click.echo(
        f"looked inside the JSON values of {len(report.json_columns)} column(s): {names}"
        + (f" and {more} more" if more > 0 else "")
    )
    unread = sum(j.unread + j.cut for j in report.json_columns)
    if unread:
        click.echo(
            f"{unread:,} value(s) in them were not read in full (not JSON, over 1,000,000 "
            "characters, or nested or sized past the limits): they are NOT checked"
        )


def _plan_table(p: purging.PurgePlan, applied: bool) -> Table:
    verb = "deleted" if applied else "would be deleted"
    table = Table(title=f"carewall purge ({p.action}): values {verb}", title_justify="left")
    for name in ("table", "column", "category", "values", "records (table)"):
        table.add_column(name, justify="right" if name.startswith(("values", "rec")) else "left")
    for t in p.tables:
        for c in t.columns:
            table.add_row(Text(t.table), Text(c.label), c.category, f"{c.values:,}",
                          f"{t.records:,}")  # fmt: skip
    return table


@main.command()
@_source_options
@click.option("--action", type=click.Choice(["null", "drop"]), default="null",
              help="Set the values to NULL (default) or drop the columns.")  # fmt: skip
@click.option("--apply", "do_apply", is_flag=True, help="Delete; without it, a dry run.")
@click.option("--holder", default=None, help="The organisation (register id) holding the data.")
@click.option("--authority", default=None,
              help="The authority for the deletion, e.g. a DPO decision or retention rule id "
              "(public in the certificate: no personal data).")  # fmt: skip
@click.option("--certificate", "cert_path", default=None, type=click.Path(dir_okay=False),
              help="Where to write the signed deletion certificate (must not exist).")  # fmt: skip
@db_and_key
def purge(
    source: str, categories: tuple[str, ...], rules_files: tuple[str, ...],
    tables: tuple[str, ...], date_column: str | None, start: str | None, end: str | None,
    as_json: bool, action: purging.Action, do_apply: bool, holder: str | None,
    authority: str | None, cert_path: str | None, db: str | None, key: str | None,
) -> None:  # fmt: skip
    """Delete what `carewall scan` finds in SOURCE. A dry run by default: it says exactly
    what would change. With --apply: one transaction per source that nulls or drops the
    values, re-scans to prove none remain, writes a signed deletion certificate and logs
    its SHA-256 in a `deletion` entry (--db, --key: the carewall instance). Nothing is
    deleted if any step fails."""
    where = _range(date_column, start, end)
    rules = load_rules(rules_files)
    if do_apply:
        for value, field in ((holder, "--holder"), (authority, "--authority"),
                             (cert_path, "--certificate")):  # fmt: skip
            if not value:
                raise InputError("is needed with --apply", field=field)
        check_text(authority, field="--authority", kind="line", max_length=500)
        if cert_path and os.path.exists(cert_path):
            raise InputError("the file already exists", field="--certificate",
                             fix="choose a new file name")  # fmt: skip
    src = open_source(source)
    try:
        report = _scan(src, rules, categories, tables, where)
        p = purging.plan(src, report, action=action, date_range=where)
        if not do_apply:
            _show_plan(p, as_json, applied=False)
            return
        assert holder and authority and cert_path
        svc = Service.open(db, key)
        try:
            applied = purging.apply(
                src, p, key=deletion_key(svc, holder), signer=deletion_signer(svc, db, key),
                holder=holder, authority=authority, issued=le.rfc3339(datetime.now(UTC)),
                recorder=_writing(recorder(svc), Path(cert_path)), rules=rules,
            )  # fmt: skip
            svc.publish_pending()
        finally:
            svc.close()
    finally:
        src.close()
    _show_plan(p, as_json, applied=True, extra={"certificate": cert_path,
               "log_index": applied.log_index})  # fmt: skip


def _writing(inner: Any, path: Path) -> purging.Recorder:
    """Write the certificate file first; remove it again if recording fails."""

    def record(certificate: str, body: Mapping[str, Any], commit: Callable[[], None]) -> int:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(certificate)
        try:
            return int(inner(certificate, body, commit))
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    return record


def _show_plan(
    p: purging.PurgePlan, as_json: bool, *, applied: bool, extra: dict[str, Any] | None = None
) -> None:
    if as_json:
        click.echo(json.dumps({"applied": applied, **p.to_json(), **(extra or {})}, indent=2))
        return
    out_console.print(_plan_table(p, applied))
    if applied and extra:
        click.echo(
            f"deleted {p.records:,} record(s); certificate {extra['certificate']} logged at "
            f"entry {extra['log_index']}"
        )
    else:
        click.echo(f"dry run: {p.records:,} record(s) would change; run again with --apply.")


@main.group()
def certificate() -> None:
    """Deletion certificates."""


@certificate.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--log", "url", required=True, help="The holder's carewall instance (base URL).")
@click.option("--key", "vkey", required=True, metavar="VKEY",
              help="The log's verifier key as its operator published it.")  # fmt: skip
def verify(file: Path, url: str, vkey: str) -> None:
    """Check FILE's signature with VKEY, and that the log at URL holds its deletion entry
    (proved under a signed checkpoint) naming the same holder, categories and records."""
    v = verify_certificate(file.read_bytes(), url, vkey)
    click.echo(
        f"verified: {v.sha256} is logged at entry {v.index} of {v.origin} (size {v.size}): "
        f"{v.body['holder']} deleted {v.body['records']:,} record(s) of "
        f"{', '.join(v.body['categories'])}"
    )
