"""Telling people their data was released: the notice, and the channels that carry it.

A :class:`Channel` delivers one :class:`Notice`; the default :class:`OutboxChannel` keeps it
in the database for the holder to print or send, :class:`SmtpChannel` mails it when
``CAREWALL_SMTP=host:port`` is set. A channel MUST raise on failure (never drop a notice
silently); the service then keeps the notice in the outbox and records the failure.
"""

from __future__ import annotations

import os
import smtplib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Protocol

from carewall.errors import InputError
from carewall.service import tables as t
from carewall.service.logentries import rfc3339
from carewall.storage.db import Store

__all__ = [
    "Channel",
    "Notice",
    "OutboxChannel",
    "SmtpChannel",
    "channel_from_env",
    "render_notice",
]


@dataclass(frozen=True)
class Notice:
    """One message to one person about one release (holds personal data: never log it)."""

    id: int
    request_id: str
    to: str | None
    subject: str
    body: str
    data: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    name: str

    def send(self, notice: Notice) -> None:
        """Deliver ``notice`` or raise; MUST NOT return unless it was handed on."""


class OutboxChannel:
    """Stores each notice in ``svc_outbox`` (letters waiting to be posted or collected)."""

    name = "outbox"

    def __init__(self, store: Store) -> None:
        self.store = store

    def send(self, notice: Notice) -> None:
        with self.store.write() as conn:
            conn.execute(
                t.outbox.insert().values(
                    notice_id=notice.id,
                    recipient=notice.to,
                    subject=notice.subject,
                    body=notice.body,
                    created_at=rfc3339(datetime.now(UTC)),
                )
            )


class SmtpChannel:
    """Mails each notice through an SMTP server (plain SMTP; STARTTLS when offered)."""

    name = "smtp"

    def __init__(self, host: str, port: int, sender: str = "carewall@localhost") -> None:
        self.host, self.port, self.sender = host, port, sender

    def send(self, notice: Notice) -> None:
        if not notice.to:
            raise InputError("no address to send the notice to", field="contact")
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = notice.to
        msg["Subject"] = notice.subject
        msg.set_content(notice.body)
        with smtplib.SMTP(self.host, self.port, timeout=30) as smtp:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls()
                smtp.ehlo()
            smtp.send_message(msg)


def channel_from_env(store: Store, env: dict[str, str] | None = None) -> Channel:
    """SMTP when ``CAREWALL_SMTP=host:port`` is set, else the database outbox."""
    env = dict(os.environ) if env is None else env
    spec = env.get("CAREWALL_SMTP", "").strip()
    if not spec:
        return OutboxChannel(store)
    host, _, port = spec.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(
            "CAREWALL_SMTP must be host:port", field="CAREWALL_SMTP", fix="e.g. localhost:25"
        )
    return SmtpChannel(host, int(port), env.get("CAREWALL_SMTP_FROM", "carewall@localhost"))


def render_notice(data: dict[str, Any]) -> tuple[str, str]:
    """The subject line and plain-text body of a notice from its structured ``data``."""
    cats = ", ".join(data["categories"])
    basis = data["legal_basis"] + (" (with a court order)" if data["court_order"] else "")
    proof = "\n".join(f"  {h}" for h in data["inclusion_proof"]) or "  (none: single entry)"
    lines = [
        f"{data['holder_name']} has released information about you.",
        "",
        f"What was released: {cats}",
        f"To whom:           {data['recipient_name']} ({data['recipient']})",
        f"Purpose:           {data['purpose']}",
        f"Legal basis:       {basis}",
        f"When:              {data['released_at']}",
        "",
        "This release is recorded in a public, append-only transparency log.",
        f"Log entry index:   {data['release_index']}",
        f"Tree size:         {data['tree_size']}",
        f"Tree root:         {data['root']}",
        f"Your commitment:   {data['commitment']}",
        "Inclusion proof (RFC 9162 audit path, leaf to root):",
        proof,
        "Signed checkpoint the proof is against (check it with the log's public key):",
        *(f"  {line}" for line in str(data.get("checkpoint") or "").splitlines()),
        "",
        f"Request id:        {data['request_id']}",
        f"Your access code:  {data['code']}",
        "Use the request id and access code to see this record and to appeal.",
    ]
    return f"Your information was shared by {data['holder_name']}", "\n".join(lines) + "\n"
