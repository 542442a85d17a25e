"""``carewall show ID``: one request's full record, as its data protection officer keeps it.

Unlike the lists, this is one record asked for by id, so it holds personal data: the
reference, the officers, the subjects' references and the reviewer's note. Text a requester
wrote is shown as plain text (never Rich markup) with control and format characters made
visible, so a request cannot restyle or rewrite the officer's terminal.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

import click
from rich.console import Group
from rich.table import Table
from rich.text import Text

from carewall.cli import main, out_console
from carewall.cli.options import db_option as _db
from carewall.errors import InputError
from carewall.service import RequestRecord, Service

__all__ = ["plain", "show"]

# the API's request id pattern (carewall.api.requests.REQUEST_ID)
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SUBJECTS_SHOWN = 50  # a request about 100,000 people lists its first subjects only


def plain(value: Any) -> Text:
    """``value`` as literal text, control and format characters written as escapes."""
    s = "" if value is None else str(value)
    return Text(
        "".join(
            c if c == "\n" or unicodedata.category(c) not in ("Cc", "Cf") else f"\\u{ord(c):04x}"
            for c in s
        )
    )


def _yes(flag: bool | None) -> str:
    return "—" if flag is None else ("yes" if flag else "no")


def _person(p: dict[str, Any] | None) -> str | None:
    if not p:
        return None
    return ", ".join(str(p[k]) for k in ("name", "role", "contact") if p.get(k))


def _org(svc: Service, org_id: str) -> str:
    org = svc.register().any_organisation(org_id)
    return f"{org_id} ({org.name})" if org and org.name != org_id else org_id


def _deferral(rec: RequestRecord) -> str | None:
    held = [n for n in rec.notices if n.status == "deferred"]
    kinds = {e.kind for e in rec.events}
    if held:
        return f"notices deferred until {held[0].review_date}"
    if "deferral_lifted" in kinds:
        return "lifted: notices sent"
    if rec.prejudice:
        return "asked by the requester; not deferred" if rec.release else "asked by the requester"
    return None


def _summary(svc: Service, rec: RequestRecord) -> Table:
    rows: list[tuple[str, Any]] = [
        ("id", rec.id),
        ("reference", rec.reference),
        ("received", rec.received_at),
        ("requester", _org(svc, rec.requester)),
        ("officer", _person(rec.officer)),
        ("authorised by", _person(rec.authorised_by)),
        ("holder", _org(svc, rec.holder)),
        ("purpose", rec.purpose),
        ("legal basis", rec.legal_basis),
        ("other bases", ", ".join(rec.other_bases) or None),
        ("offence", rec.offence),
        (
            "court order",
            ", ".join(str(v) for v in (rec.court_order or {}).values()) or None,
        ),
        ("categories asked", ", ".join(rec.categories)),
        ("onward recipients", ", ".join(rec.onward_recipients) or None),
        ("subjects", str(len(rec.subjects))),
        ("necessity", rec.necessity),
        ("state", f"{rec.stage} / {rec.outcome}"),
        ("decided", f"{rec.decided_at} under policy {rec.decision.get('policy', '—')}"),
        ("reviewer", f"{rec.reviewer} at {rec.reviewed_at}" if rec.reviewer else None),
        ("review note", rec.review_note),
    ]
    if rec.release is not None:
        rel = rec.release
        rows.append(("released", f"{', '.join(rel.categories)} to {_org(svc, rel.recipient)}"))
        rows.append(("released at", f"{rel.sent_at} by {rel.reviewer}"))
    if rec.appeal is not None:
        a = rec.appeal
        rows.append(("appeal", f"by the {a.by} at {a.lodged_at} against {a.prior_outcome}"))
        rows.append(("appeal grounds", a.grounds))
        if a.result:
            rows.append(("appeal decided", f"{a.result} by {a.reviewer} at {a.decided_at}"))
    if rec.withdrawn_by:
        rows.append(("withdrawn", f"by {rec.withdrawn_by} at {rec.withdrawn_at}"))
    rows.append(("deferral", _deferral(rec)))
    table = Table(title=f"request {rec.id}", show_header=False, title_justify="left")
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in rows:
        if value is not None:
            table.add_row(name, plain(value))
    return table


def _decision(rec: RequestRecord) -> Group:
    released = set(rec.release.categories) if rec.release else set()
    table = Table(title="decision by category", title_justify="left")
    table.add_column("category", no_wrap=True)
    table.add_column("policy", no_wrap=True)
    table.add_column("released", no_wrap=True)
    table.add_column("rules", overflow="fold")
    cats: dict[str, Any] = rec.decision.get("categories") or {}
    for cat in rec.categories:
        got = cats.get(cat) or {}
        table.add_row(
            plain(cat),
            plain(got.get("outcome", "refused")),
            "yes" if cat in released else "no",
            plain(", ".join(got.get("rules") or []) or "—"),
        )
    reasons = [f"  • {r}" for r in rec.decision.get("reasons") or []]
    return Group(table, Text("reasons:"), plain("\n".join(reasons) or "  —"))


def _subjects(rec: RequestRecord) -> Table:
    more = len(rec.subjects) - _SUBJECTS_SHOWN
    table = Table(
        title="subjects (claimed by the requester → the holder's record)",
        title_justify="left",
        caption=f"… and {more} more: carewall show {rec.id} --json" if more > 0 else None,
    )
    for col in ("#", "reference", "child", "victim/witness", "consent", "contact"):
        table.add_column(col, overflow="fold")
    for s in rec.subjects[:_SUBJECTS_SHOWN]:
        held = s.held

        def fact(claimed: bool, kept: bool | None) -> str:
            return _yes(claimed) if kept is None else f"{_yes(claimed)} → {_yes(kept)}"

        table.add_row(
            str(s.position),
            plain(s.ref),
            fact(s.is_child, held.is_child if held else None),
            fact(s.is_victim_or_witness, held.is_victim_or_witness if held else None),
            fact(s.consent, held.consent if held else None),
            "on file" if s.has_contact else "none",
        )
    return table


def _notices(rec: RequestRecord) -> Table:
    table = Table(title="notices", title_justify="left")
    for col in ("notice", "subject", "status", "channel", "delivered", "log index"):
        table.add_column(col, no_wrap=col != "delivered")
    for n in rec.notices:
        status = f"deferred until {n.review_date}" if n.status == "deferred" else n.status
        table.add_row(
            str(n.id),
            str(n.subject),
            status,
            n.channel or "—",
            n.delivered_at or "not yet",
            str(n.log_index),
        )
    return table


def _events(rec: RequestRecord) -> Table:
    table = Table(title="events", title_justify="left")
    table.add_column("time", no_wrap=True)
    table.add_column("event", no_wrap=True)
    table.add_column("by", overflow="fold")
    table.add_column("log index", justify="right", no_wrap=True)
    for e in rec.events:
        index = "—" if e.log_index is None else str(e.log_index)
        table.add_row(e.time, plain(e.kind), plain(e.actor or "—"), index)
    return table


@main.command()
@click.argument("id")
@_db
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
def show(id: str, db: str | None, as_json: bool) -> None:
    """Show request ID's full record: who asked for what, the decision and its rules, the
    review, release, appeal, notices and every event with its log index.

    It holds personal data (references, officers, subjects): it is the DPO's record.
    """
    if not _REQUEST_ID.fullmatch(id):
        # never echoed: an id that is not one may hold anything
        raise InputError(
            "is not a request id: ids are letters, digits, '-' and '_', at most 64",
            field="id",
            fix="copy it from `carewall requests`",
        )
    svc = Service.open(db)
    try:
        rec = svc.get(id)
        if as_json:
            click.echo(json.dumps(rec.model_dump(), indent=2))
            return
        parts: list[Any] = [_summary(svc, rec), _decision(rec), _subjects(rec)]
    finally:
        svc.close()
    if rec.notices:
        parts.append(_notices(rec))
    parts.append(_events(rec))
    for part in parts:
        out_console.print(part)
        out_console.print()
