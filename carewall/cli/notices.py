"""``carewall notices list | print | resend``: the letters telling people their data went.

After a release each subject gets a notice: a letter with what was released, to whom, the
log proofs and an access code (see :mod:`carewall.service.notices`). With the default
database outbox the letters wait there for the holder to print and post; with
``CAREWALL_SMTP`` set they are mailed. ``list`` shows ids, channels and times (an address
only with ``--show-contact``); ``print`` writes one letter exactly as its reader has it;
``resend`` sends that same letter again, with the same access code
(:mod:`carewall.service.letters`).
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from carewall.cli import main, out_console
from carewall.cli.options import db_option as _db
from carewall.cli.show import plain
from carewall.service import NoticeRecord, Service
from carewall.service.letters import kept_letter, notice_contacts, resend_letter

__all__ = ["notices"]

_NOTICE_ID = click.IntRange(1, 2**31 - 1)


def _state(n: NoticeRecord) -> str:
    if n.status == "deferred":
        return "deferred"
    if n.delivered_at is not None:
        return "delivered"
    # claimed and not delivered: being sent now, or its worker died (freed when its lease
    # runs out: CAREWALL_WORKER_LEASE, a minute by default)
    return "sending" if n.claimed_at else "waiting"


def _minute(time: str) -> str:
    return time.replace("T", " ")[:16]


def _when(n: NoticeRecord) -> str:
    if n.status == "deferred":
        return f"review by {n.review_date}"
    return _minute(n.delivered_at) if n.delivered_at else f"due since {_minute(n.created_at)}"


@main.group()
def notices() -> None:
    """Notices to the people whose data was released: list, print, resend."""


@notices.command("list")
@_db
@click.option("--request", "request_id", default=None, help="Only this request's notices.")
@click.option(
    "--undelivered", is_flag=True, help="Only notices due and not yet delivered (not deferred)."
)
@click.option(
    "--show-contact",
    is_flag=True,
    help="Also show where each notice is addressed (personal data).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def list_(
    db: str | None, request_id: str | None, undelivered: bool, show_contact: bool, as_json: bool
) -> None:
    """List notices, oldest first: id, request, channel, delivered or not, and when."""
    svc = Service.open(db)
    try:
        rows = svc.notices(request_id, undelivered=undelivered)
        contacts = notice_contacts(svc, [n.id for n in rows]) if show_contact else {}
    finally:
        svc.close()
    if as_json:
        for n in rows:
            out: dict[str, Any] = {**n.model_dump(), "delivered": n.delivered_at is not None}
            if show_contact:
                out["contact"] = contacts.get(n.id)
            click.echo(json.dumps(out))
        return
    table = Table(title=f"{len(rows)} notices" + (" not yet delivered" if undelivered else ""))
    # ids are what people copy into `notices print` and `show`: never shortened
    table.add_column("notice", justify="right", no_wrap=True)
    table.add_column("request id", no_wrap=True, min_width=21)
    table.add_column("subject", justify="right", no_wrap=True)
    table.add_column("channel", no_wrap=True)
    table.add_column("delivered", no_wrap=True)
    table.add_column("when", overflow="fold")
    if show_contact:
        table.add_column("contact", overflow="fold")
    for n in rows:
        cells: list[Any] = [
            str(n.id),
            n.request_id,
            str(n.subject),
            n.channel or "—",
            _state(n),
            _when(n),
        ]
        if show_contact:
            cells.append(plain(contacts.get(n.id) or "none"))
        table.add_row(*cells)
    out_console.print(table)


@notices.command("print")
@click.argument("notice_id", type=_NOTICE_ID)
@_db
def print_(notice_id: int, db: str | None) -> None:
    """Print notice NOTICE_ID's letter exactly as its reader has it (access code included).

    Only a letter that went to the database outbox is kept; one mailed over SMTP is not.
    """
    svc = Service.open(db)
    try:
        letter = kept_letter(svc, notice_id)
    finally:
        svc.close()
    click.echo(letter.body, nl=False)


@notices.command("resend")
@click.argument("notice_id", type=_NOTICE_ID)
@_db
def resend(notice_id: int, db: str | None) -> None:
    """Send notice NOTICE_ID's letter again: the same letter, with the same access code.

    It goes by the instance's channel: into the outbox again (print it with `carewall
    notices print`), or by mail to the same address when CAREWALL_SMTP is set. No new
    code is issued, so the code in the first letter keeps working.
    """
    svc = Service.open(db)
    try:
        letter, used = resend_letter(svc, notice_id)
    finally:
        svc.close()
    where = (
        f"into the outbox (print it with `carewall notices print {notice_id}`)"
        if used == "outbox"
        else f"by {used}"
    )
    click.echo(
        f"notice {notice_id} of request {letter.request_id}: the same letter, with the same "
        f"access code, sent again {where}"
    )
