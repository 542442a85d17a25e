"""Telling people their data was released: the notice, and the channels that carry it.

A :class:`Channel` delivers one :class:`Notice`; the default :class:`OutboxChannel` keeps it
in the database for the holder to print or send, :class:`SmtpChannel` mails it when
``CAREWALL_SMTP=host:port`` is set. A channel MUST raise on failure (never drop a notice
silently); the service then keeps the notice in the outbox and records the failure.
"""

from __future__ import annotations

import os
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from carewall.errors import InputError
from carewall.service import tables as t
from carewall.service.logentries import rfc3339
from carewall.storage.db import Store

__all__ = [
    "MY_DATA_PATH",
    "Channel",
    "Notice",
    "OutboxChannel",
    "SmtpChannel",
    "channel_from_env",
    "render_notice",
]


# Where the person reads their record and appeals (carewall.web.subject serves it).
MY_DATA_PATH = "/my-data"


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
            self.send_in(conn, [notice])

    def send_in(self, conn: Connection, notices: Sequence[Notice]) -> None:
        """Store ``notices`` inside the caller's write transaction (they commit with it).

        The service uses this to commit a batch of letters, their access codes' hashes and
        their delivery marks at once: a letter is never in the outbox without its code.
        """
        if not notices:
            return
        now = rfc3339(datetime.now(UTC))
        conn.execute(
            t.outbox.insert(),
            [
                {
                    "notice_id": n.id,
                    "recipient": n.to,
                    "subject": n.subject,
                    "body": n.body,
                    "created_at": now,
                }
                for n in notices
            ],
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
    """The subject line and plain-text body of a notice from its structured ``data``.

    Two proofs, both RFC 9162 audit paths a person can check with any Merkle verifier:
    the release entry's inclusion in the signed log, and the person's commitment's
    inclusion in the ``subjects_root`` that the request's own log entry carries.
    """
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
        "Signed checkpoint the proof is against (check it with the log's public key; any",
        "further signature lines are independent witnesses' countersignatures, and the log's",
        "page /log/checkpoint shows those collected since):",
        *(f"  {line}" for line in str(data.get("checkpoint") or "").splitlines()),
        *_subject_lines(data),
        "",
        *_where_to_look(data),
        f"Request ID:        {data['request_id']}",
        f"Your access code:  {data['code']}",
    ]
    return f"Your information was shared by {data['holder_name']}", "\n".join(lines) + "\n"


def _where_to_look(data: dict[str, Any]) -> list[str]:
    """Where to see this record and appeal, and what to type there (the form's own words)."""
    base = data.get("public_url")
    if isinstance(base, str) and base.startswith(("https://", "http://")):
        where = [f"Go to {base.rstrip('/')}{MY_DATA_PATH}"]
    else:
        where = [
            f"Go to the 'Your data' page of this service (its address ends in {MY_DATA_PATH})."
        ]
    return [
        "See this record, check it for yourself and appeal",
        *where,
        "There, type the Request ID and the Access code shown below, exactly as they are",
        "written here. Keep the access code private: anyone who has it can see this record.",
    ]


def _subject_lines(data: dict[str, Any]) -> list[str]:
    """How to check that you are one of the request's subjects (absent in older notices)."""
    if not data.get("subjects_root"):
        return []
    path = "\n".join(f"  {h}" for h in data["subject_path"]) or "  (none: the only subject)"
    where = data.get("request_index")
    return [
        "",
        "The request itself is in the log too. It lists the people it is about only as a",
        "Merkle root over their commitments, in request order (leaf = SHA-256(0x00 ||",
        "commitment)); the path below shows that your commitment is one of them.",
        f"Request log index: {where if where is not None else '(not recorded)'}",
        f"Subjects root:     {data['subjects_root']}",
        f"Your position:     {data['subject_position']} (counting from 0) "
        f"of {data['subject_count']} subjects",
        "Your subjects path (RFC 9162 audit path, your commitment to the subjects root):",
        path,
    ]
