"""``carewall requests``: the list of requests, filtered and paged as the DPO's page is.

The filters are the reading layer's (:meth:`carewall.service.Service.list_requests`), so
the command line and the pages find the same requests. The list shows ids, organisations,
purposes, counts and outcomes: a reference can be searched for but is never printed.
"""

from __future__ import annotations

import json

import click
from rich.table import Table

from carewall.cli import main, out_console
from carewall.cli.options import db_option as _db
from carewall.errors import InputError
from carewall.service import Outcome, Service, Stage

__all__ = ["requests"]

STATES = sorted({s.value for s in Stage} | {o.value for o in Outcome})


@main.command()
@_db
@click.option("--holder", default=None, help="Only requests held by this organisation.")
@click.option("--requester", default=None, help="Only requests made by this organisation.")
@click.option(
    "--reference",
    default=None,
    metavar="REF",
    help="Only requests with exactly this requester's reference (no wildcards).",
)
@click.option(
    "--state",
    type=click.Choice(STATES),
    default=None,
    metavar="STATE",
    help="A stage or an outcome: " + ", ".join(STATES) + ".",
)
@click.option(
    "--since", default=None, metavar="YYYY-MM-DD", help="Only requests received on or after."
)
@click.option(
    "--until", default=None, metavar="YYYY-MM-DD", help="Only requests received on or before."
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many.")
@click.option(
    "--offset", type=click.IntRange(min=0), default=0, help="Skip this many first (paging)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def requests(
    db: str | None,
    holder: str | None,
    requester: str | None,
    reference: str | None,
    state: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    offset: int,
    as_json: bool,
) -> None:
    """List requests, oldest first (ids, organisations, purposes and outcomes; no personal data).

    Days are UTC and both ends are included: --since 2026-11-01 --until 2026-11-30 is
    November. Page with --limit and --offset.
    """
    svc = Service.open(db)
    try:
        found = svc.list_requests(
            holder,
            requester,
            state,
            reference=reference,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
    except InputError as e:
        if e.field not in ("since", "until"):
            raise
        raise InputError(e.message, field="--" + e.field, fix=e.fix) from e
    finally:
        svc.close()
    rows = [
        # a request withdrawn before outcomes said so still shows as withdrawn
        r.model_copy(update={"outcome": "withdrawn"}) if r.stage == "withdrawn" else r
        for r in found
    ]
    if as_json:
        for r in rows:
            click.echo(json.dumps(r.model_dump()))
        return
    table = Table(title=f"{len(rows)} requests" + (f" from number {offset + 1}" if offset else ""))
    # The id is what people copy into `carewall review`, so it is never shortened; the other
    # columns wrap instead of being cut on a narrow terminal.
    table.add_column("id", no_wrap=True, min_width=21)
    for col in ("received", "requester", "holder", "purpose", "subjects"):
        table.add_column(col, overflow="fold")
    # stage and outcome are short words read at a glance ("withdrawn"): never folded
    table.add_column("stage", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    for r in rows:
        table.add_row(
            r.id,
            r.received_at.replace("T", " ")[:16],
            r.requester,
            r.holder,
            r.purpose,
            str(r.subjects),
            r.stage,
            r.outcome,
        )
    out_console.print(table)
