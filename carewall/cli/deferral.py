"""``carewall deferral list | lift | renew``: notices the holder has decided to defer.

A requester may ask (``prejudice: true``) that the subjects not be told yet; the holder's
reviewer decides at release, with a review date at most 90 days ahead (contract §3,
"Deferral"). Deferred requests are listed here until a reviewer at the holder lifts the
deferral (the notices go out, each logged) or renews it with a new review date. Every
decision is a ``deferral`` ledger entry. The list shows ids, dates and counts only.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import click
from rich.table import Table

from carewall.cli import main, out_console
from carewall.cli.options import db_option as _db
from carewall.cli.options import key_option as _key
from carewall.errors import InputError
from carewall.service import RequestRecord, Service

__all__ = ["deferral"]

_reviewer = click.option(
    "--reviewer", required=True, help="Release reviewer id at the holder (from the register)."
)
_TODAY = "today"


def _due_by(value: str | None) -> str | None:
    """The ``--due`` option as an ISO date: given, today when bare, None when absent."""
    if value is None:
        return None
    if value == _TODAY:
        return datetime.now(UTC).date().isoformat()
    try:
        if len(value) != 10 or not value.isascii():
            raise ValueError(value)
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise InputError(
            "is not a date", field="--due", fix="write it as YYYY-MM-DD, or give --due alone"
        ) from None


@main.group()
def deferral() -> None:
    """Deferred notices: list those due for review, lift or renew a deferral."""


@deferral.command("list")
@click.option("--holder", default=None, help="Only requests held by this organisation.")
@click.option(
    "--due",
    is_flag=False,
    flag_value=_TODAY,
    default=None,
    metavar="[YYYY-MM-DD]",
    help="Only deferrals whose review date has come by DATE (alone: by today).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@_db
def list_(holder: str | None, due: str | None, as_json: bool, db: str | None) -> None:
    """List requests whose notices are deferred, soonest review date first (no personal data)."""
    due_by = _due_by(due)
    svc = Service.open(db)
    try:
        rows = svc.deferrals(holder, due_by=due_by)
    finally:
        svc.close()
    if as_json:
        for d in rows:
            click.echo(json.dumps(d.to_json()))
        return
    title = f"{len(rows)} deferred requests" + (f" due by {due_by}" if due_by else "")
    table = Table(title=title)
    # The id is what people copy into `carewall deferral lift`, so it is never shortened.
    table.add_column("request id", no_wrap=True, min_width=21)
    table.add_column("holder", overflow="fold")
    table.add_column("requester", overflow="fold")
    table.add_column("review date", no_wrap=True, min_width=10)
    table.add_column("notices", justify="right")
    table.add_column("decided by", overflow="fold")
    for d in rows:
        table.add_row(
            d.request_id, d.holder, d.requester, d.review_date, str(d.notices), d.decided_by
        )
    out_console.print(table)


def _print(rec: RequestRecord, action: str) -> None:
    deferred = [n for n in rec.notices if n.status == "deferred"]
    until = deferred[0].review_date if deferred else None
    if until is not None:
        click.echo(f"notices: {len(deferred)} deferred until {until}", err=True)
    else:
        sent = sum(1 for n in rec.notices if n.status == "sent")
        click.echo(f"notices: {sent} sent", err=True)
    click.echo(
        json.dumps(
            {
                "id": rec.id,
                "deferral": action,
                "review_date": until,
                "notices_deferred": len(deferred),
                "notices_sent": sum(1 for n in rec.notices if n.status == "sent"),
            },
            indent=2,
        )
    )


@deferral.command("lift")
@click.argument("id")
@_reviewer
@_db
@_key
def lift(id: str, reviewer: str, db: str | None, key: str | None) -> None:
    """Lift the deferral on request ID: its subjects' notices are sent now."""
    svc = Service.open(db, key)
    try:
        rec = svc.lift_deferral(id, reviewer)
    finally:
        svc.close()
    _print(rec, "lifted")


@deferral.command("renew")
@click.argument("id")
@_reviewer
@click.option(
    "--until",
    required=True,
    metavar="YYYY-MM-DD",
    help="The new review date (after today, at most 90 days ahead).",
)
@_db
@_key
def renew(id: str, reviewer: str, until: str, db: str | None, key: str | None) -> None:
    """Keep request ID's notices deferred until a new review date."""
    svc = Service.open(db, key)
    try:
        rec = svc.renew_deferral(id, reviewer, until)
    except InputError as e:
        if e.field != "until":
            raise
        raise InputError(e.message, field="--until", fix=e.fix) from e
    finally:
        svc.close()
    _print(rec, "renewed")
