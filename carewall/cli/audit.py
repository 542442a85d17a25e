"""``carewall audit URL --key VKEY [--state FILE]``: check a carewall log as an outsider.

Exit 0 when everything checked out; 1 on any failure (bad signature, fork, an entry not
committed to, and every finding of the replay: an entry malformed, unknown, out of order,
a decision that differs when made again, a release the log does not justify, and published
statistics that are missing or differ from the log's); 2 on a usage or network error.
Findings are listed one per line, each naming the entry's index; the output always ends
with a statement a person can quote (contract §7).

``--key`` must come from outside the server being audited: the operator's own publication
(the ``.vkey`` file ``carewall init`` wrote, published on the body's site) or, with witnesses,
the key their cosignatures vouch for. The key a server shows at ``/`` or ``/log/key`` is
whatever it holds; a server that rewrote and re-signed its log would show the new key.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from carewall.audit import (
    AuditReport,
    Finding,
    audit_log,
    default_key_path,
    load_state,
    save_state,
    state_key,
)
from carewall.audit.witnesses import check_quorum, load_witness_keys
from carewall.cli import err_console, main, out_console
from carewall.errors import CarewallError, InputError

MAX_LISTED = 200  # findings printed per section; the state file keeps them all


def _summary(report: AuditReport) -> Table:
    table = Table(show_header=False, title="carewall audit", title_justify="left")
    table.add_column("what")
    table.add_column("value")
    t = report.totals
    table.add_row("log", Text(report.origin))
    table.add_row("tree size", f"{report.size:,}")
    table.add_row("root", base64.b64encode(report.root).decode())
    table.add_row("previous size", f"{report.previous_size:,}")
    table.add_row("entries checked now", f"{report.checked:,}")
    if report.replayed:
        table.add_row("requests (whole log)", f"{t.requests:,}")
        table.add_row("decisions made again and matched", f"{t.decisions_matched:,}")
        table.add_row("releases", f"{t.releases:,}")
        table.add_row("releases to immigration enforcement", f"{t.releases_to_immigration:,}")
        checked = {True: "match the log", False: "FAILED (see findings)", None: "not checked"}
        table.add_row("published statistics", checked[report.statistics_match])
    table.add_row("findings", f"{len(report.findings) + len(report.earlier_findings):,}")
    return table


def _list(findings: list[Finding], title: str) -> None:
    click.echo(f"{title}:")
    for f in findings[:MAX_LISTED]:
        click.echo(f"  {f.line()}")
    if len(findings) > MAX_LISTED:
        click.echo(f"  … and {len(findings) - MAX_LISTED:,} more (all kept in the --state file)")


def _stopped(url: str, e: CarewallError) -> str:
    if e.exit_code == 1:
        return (
            f"The log at {url} FAILED the audit before it could be replayed: {e.message}. "
            "Nothing it serves can be relied on."
        )
    return f"The log at {url} was not audited: {e.message}."


class _SealingKey:
    """The key that seals --state: read (or made, for a state not yet written) only when
    first needed, so a state file that is no state is refused as such first."""

    def __init__(self, state_path: Path | None, key_path: Path | None) -> None:
        if state_path is None and key_path is not None:
            raise InputError(
                "--state-key seals a state file, and no --state was given",
                field="--state-key",
                fix="give --state FILE too, or leave --state-key out",
            )
        self.path = key_path or default_key_path()
        self._key: bytes | None = None

    def __call__(self) -> bytes:
        if self._key is None:
            self._key, made = state_key(self.path)
            if made:
                click.echo(
                    f"made a key to seal the audit state: {self.path} (keep it; back it up)",
                    err=True,
                )
        return self._key


@main.command()
@click.argument("url")
@click.option(
    "--key",
    "vkey",
    required=True,
    metavar="VKEY",
    help="The log's verifier key, name+hex8+base64, as the operator published it (or as "
    "witnesses' cosignatures vouch for it); never copy it from the server being audited.",
)
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File remembering the last verified checkpoint and the replay, for incremental audits.",
)
@click.option(
    "--state-key",
    "state_key_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The key that seals --state, made on first use (default: "
    "$XDG_CONFIG_HOME/carewall/audit-state.key). A state changed without it is refused: keep "
    "it where the log's operator cannot read it, apart from the state.",
)
@click.option(
    "--no-statistics",
    is_flag=True,
    help="Do not check URL/statistics.json (for a log of other software that serves /log/ "
    "alone); every carewall instance publishes statistics, and by default they must match.",
)
@click.option(
    "--witness",
    "witness_vkeys",
    multiple=True,
    metavar="VKEY",
    help="A witness whose cosignatures count toward --quorum: its cosignature/v1 verifier "
    "key (name+hex8+base64, type 0x04). Repeatable.",
)
@click.option(
    "--witness-file",
    "witness_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A file of witness verifier keys, one a line. Repeatable.",
)
@click.option(
    "--quorum",
    type=click.IntRange(min=0),
    default=None,
    help="Fail unless this many of the witnesses (distinct keys) cosigned the checkpoint "
    "verified (default: all of them when witnesses are given, else 0).",
)
def audit(
    url: str,
    vkey: str,
    state_path: Path | None,
    state_key_path: Path | None,
    no_statistics: bool,
    witness_vkeys: tuple[str, ...],
    witness_files: tuple[Path, ...],
    quorum: int | None,
) -> None:
    """Follow the carewall log at URL: check signatures, consistency and every entry, and
    replay it (register, policy, every decision made again, every release justified); then
    check that the statistics it publishes are the ones its log gives.

    Take --key from outside the server: the operator's own publication of the log's
    verifier key or, with witnesses, their cosignatures. The key the server itself shows
    proves nothing, since whoever rewrote the log could re-sign it and show their own key.
    """
    witnesses = load_witness_keys(witness_vkeys, witness_files)
    if quorum is None:
        quorum = len({w.public_key for w in witnesses})
    try:
        key = _SealingKey(state_path, state_key_path)
        state = load_state(state_path, key) if state_path else None
        with Progress(
            TextColumn("checking entries"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            disable=not err_console.is_terminal,
            transient=True,
        ) as bar:
            task = bar.add_task("entries", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report, new_state = audit_log(
                url,
                vkey,
                state,
                progress=progress,
                statistics=not no_statistics,
                witnesses=witnesses,
                quorum=quorum,
            )
        if state_path:
            save_state(state_path, new_state, key())
    except CarewallError as e:
        click.echo(_stopped(url, e))
        raise

    out_console.print(_summary(report))
    if witnesses:
        names = check_quorum(new_state.checkpoint, witnesses, quorum)
        click.echo(f"cosigned by {len(names)} witness(es): {', '.join(names) or 'none'}")
    if report.findings:
        _list(report.findings, "findings")
    if report.earlier_findings:
        _list(report.earlier_findings, "flagged in earlier audits")
    click.echo(report.statement())
    if not report.ok:
        count = len(report.findings) + len(report.earlier_findings)
        first = (report.findings or report.earlier_findings)[0]
        click.echo(
            f"error: the log failed the audit with {count:,} finding(s), the first at entry "
            f"{first.index} (listed above)",
            err=True,
        )
        sys.exit(1)
