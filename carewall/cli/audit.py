"""``carewall audit URL --key VKEY [--state FILE]``: check a carewall log as an outsider.

Exit 0 when everything checked out, 1 on any failure (bad signature, fork, an entry not
committed to, a non-canonical entry, a release that breaks the pledge), 2 on a usage or
network error. Every failure is one line on stderr, never a traceback.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from carewall.audit import AuditReport, Finding, audit_log, load_state, save_state
from carewall.cli import err_console, main, out_console


def _violations_table(findings: list[Finding], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("index", justify="right")
    table.add_column("pledge rule")
    for f in findings:
        for rule in f.rules:
            table.add_row(str(f.index), rule)
    return table


def _summary(report: AuditReport) -> Table:
    table = Table(show_header=False, title="carewall audit", title_justify="left")
    table.add_column("what")
    table.add_column("value")
    table.add_row("log", Text(report.origin))
    table.add_row("tree size", f"{report.size:,}")
    table.add_row("root", base64.b64encode(report.root).decode())
    table.add_row("previous size", f"{report.previous_size:,}")
    table.add_row("entries checked", f"{report.checked:,}")
    table.add_row("releases judged", f"{report.releases:,}")
    table.add_row(
        "releases breaking the pledge",
        str(len(report.violations) + len(report.earlier_violations)),
    )
    return table


@main.command()
@click.argument("url")
@click.option("--key", "vkey", required=True, help="The log's verifier key, name+hex8+base64.")
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File remembering the last verified checkpoint, for incremental audits.",
)
def audit(url: str, vkey: str, state_path: Path | None) -> None:
    """Follow the carewall log at URL and check it: signatures, consistency, every entry."""
    state = load_state(state_path) if state_path else None
    show = err_console.is_terminal
    with Progress(
        TextColumn("checking entries"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=not show,
        transient=True,
    ) as bar:
        task = bar.add_task("entries", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report, new_state = audit_log(url, vkey, state, progress=progress)

    if state_path:
        save_state(state_path, new_state)
    out_console.print(_summary(report))
    if report.violations:
        out_console.print(_violations_table(report.violations, "releases that break the pledge"))
    if report.earlier_violations:
        out_console.print(_violations_table(report.earlier_violations, "flagged in earlier audits"))
    if not report.ok:
        click.echo("error: releases in this log break the pledge (listed above)", err=True)
        sys.exit(1)
    out_console.print("[green]ok[/]: the log is consistent and every entry checked out")
