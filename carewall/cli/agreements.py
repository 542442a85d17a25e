"""``carewall agreement register | list | show | withdraw | destroyed | publish-certificate``.

Standing data-sharing agreements (memoranda of understanding, data-sharing agreements) as
first-class records. ``register FILE`` decides the agreement with the pledge and the local
policy and logs it: registered, or refused naming the pledge rules (exit 1; the attempt is
logged all the same). ``withdraw ID`` counts, from the log, what was released under it and
asks for its destruction; ``destroyed ID --certificate FILE`` registers the recipient's
signed deletion certificate, and serves it at ``/certificates/<hex>`` for the auditor;
``publish-certificate ID --certificate FILE`` serves one registered before certificates
were kept (migration 0013). See docs/clean.md, "Agreements".
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from carewall.cli import main, out_console
from carewall.cli.options import db_and_key
from carewall.cli.options import db_option as _db
from carewall.policy.agreements import parse_agreement_text
from carewall.service import Service
from carewall.service.agreement_letters import destruction_letter
from carewall.service.agreement_records import (
    AgreementRecord,
    get_agreement,
    list_agreements,
    publish_certificate,
)

__all__ = ["agreement"]


def _print(record: AgreementRecord, as_json: bool = True) -> None:
    click.echo(json.dumps(record.model_dump(), indent=2, sort_keys=True))


@main.group()
def agreement() -> None:
    """Standing data-sharing agreements: register, list, show, withdraw, letter, destroyed."""


@agreement.command("register")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@db_and_key
def register(file: Path, db: str | None, key: str | None) -> None:
    """Decide the agreement in FILE (TOML, or JSON if it ends in .json) and log it.

    Exit 0 when registered; exit 1 when the pledge forbids it (the refusal is logged and
    printed, naming the rules); exit 2 for a malformed file."""
    agreement_ = parse_agreement_text(file.read_bytes(), file.name)
    svc = Service.open(db, key)
    try:
        record = svc.register_agreement(agreement_)
        svc.publish_pending()
    finally:
        svc.close()
    _print(record)
    if record.state == "refused":
        click.echo(
            f"refused: the pledge forbids this agreement ({', '.join(record.rules)})", err=True
        )
        raise click.exceptions.Exit(1)


@agreement.command("list")
@click.option("--holder", default=None, help="Only agreements of this holder.")
@click.option("--overdue", is_flag=True, help="Only those whose destruction is overdue today.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_db
def list_command(holder: str | None, overdue: bool, as_json: bool, db: str | None) -> None:
    """Every agreement put forward, refused ones included: ids, dates and counts."""
    svc = Service.open(db)
    try:
        records = list_agreements(svc, holder=holder, overdue=overdue)
    finally:
        svc.close()
    if as_json:
        click.echo(json.dumps([r.model_dump() for r in records], indent=2, sort_keys=True))
        return
    table = Table("id", "state", "holder", "recipient", "purpose", "from", "to", "released", "due")
    for r in records:
        due = (r.due or "") + (" (overdue)" if r.overdue else "")
        table.add_row(
            r.id, r.state, r.terms["holder"], r.terms["recipient"], r.terms["purpose"],
            r.terms["start"], r.terms["end"] or "", "" if r.releases is None else str(r.releases),
            due,
        )  # fmt: skip
    out_console.print(table)


@agreement.command("show")
@click.argument("agreement_id", metavar="ID")
@_db
def show(agreement_id: str, db: str | None) -> None:
    """One agreement, as JSON."""
    svc = Service.open(db)
    try:
        _print(get_agreement(svc, agreement_id))
    finally:
        svc.close()


@agreement.command("letter")
@click.argument("agreement_id", metavar="ID")
@_db
def letter(agreement_id: str, db: str | None) -> None:
    """The letter asking the recipient of a withdrawn agreement to destroy what it received,
    by the due date, and to send back a signed deletion certificate. Print it and send it."""
    svc = Service.open(db)
    try:
        record = get_agreement(svc, agreement_id)
        register = svc.register()
        names = {}
        for role in ("holder", "recipient"):
            org = register.any_organisation(record.terms[role])
            names[role] = org.name if org else record.terms[role]
        subject, body = destruction_letter(
            record, names["holder"], names["recipient"], svc.ledger.origin
        )
    finally:
        svc.close()
    click.echo(f"Subject: {subject}\n\n{body}", nl=False)


@agreement.command("withdraw")
@click.argument("agreement_id", metavar="ID")
@click.option(
    "--due-days", type=int, default=None, help="Days the recipient has to destroy (default 30)."
)
@db_and_key
def withdraw(agreement_id: str, due_days: int | None, db: str | None, key: str | None) -> None:
    """Withdraw a registered agreement: count what was released under it (from the log) and,
    if anything was, ask the recipient to destroy it by the due date (`carewall agreement
    letter ID` prints the request to send)."""
    svc = Service.open(db, key)
    try:
        record = svc.withdraw_agreement(agreement_id, due_days=due_days)
        svc.publish_pending()
    finally:
        svc.close()
    _print(record)


@agreement.command("destroyed")
@click.argument("agreement_id", metavar="ID")
@click.option(
    "--certificate", "cert", required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The recipient's signed deletion certificate (carewall/deletion-certificate/v1).",
)  # fmt: skip
@click.option(
    "--recipient-key", default=None, metavar="VKEY",
    help="The recipient's published verifier key (default: the key pinned at registration).",
)  # fmt: skip
@click.option(
    "--recipient-log", default=None, metavar="URL",
    help="Also check the certificate's deletion entry in the recipient's own carewall log.",
)  # fmt: skip
@db_and_key
def destroyed(
    agreement_id: str, cert: Path, recipient_key: str | None, recipient_log: str | None,
    db: str | None, key: str | None,
) -> None:  # fmt: skip
    """Register the recipient's deletion certificate: the destruction asked for at withdrawal
    is done. Logs the certificate's `deletion` entry and a `destroyed` agreement entry."""
    data = cert.read_bytes()
    svc = Service.open(db, key)
    try:
        if recipient_log is not None:
            from carewall.clean.verify import verify_certificate

            vkey = recipient_key or get_agreement(svc, agreement_id).recipient_key or ""
            verify_certificate(data, recipient_log, vkey)
        record = svc.agreement_destroyed(agreement_id, data, recipient_key)
        svc.publish_pending()
    finally:
        svc.close()
    _print(record)


@agreement.command("publish-certificate")
@click.argument("agreement_id", metavar="ID")
@click.option(
    "--certificate", "cert", required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The certificate file whose SHA-256 the agreement's destroyed entry logged.",
)  # fmt: skip
@_db
def publish_certificate_command(agreement_id: str, cert: Path, db: str | None) -> None:
    """Serve, at /certificates/<hex>, the certificate of a destruction registered before
    certificates were kept: the auditor finds each destruction whose certificate is not
    published. Only the very file the log names is taken; the log does not change."""
    svc = Service.open(db)
    try:
        publish_certificate(svc, agreement_id, cert.read_bytes())
        record = get_agreement(svc, agreement_id)
    finally:
        svc.close()
    _print(record)
