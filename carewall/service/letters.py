"""Letters already sent: read one back, say where notices went, and send a letter again.

A notice's letter, with the person's access code, is kept only where it was delivered to:
the database outbox (``svc_outbox``) keeps every letter it took. A letter mailed over SMTP
is not kept, and of its code only the SHA-256 is (``svc_subjects.code_hash``), so such a
letter cannot be read back or sent again. Sending again MUST re-send the kept letter
byte for byte and MUST NOT issue a new code: a new code would void the one in the letter
the person already holds. A notice has one code for its life
(:mod:`carewall.service.codes`): even delivery, repeated after a crash, gives the same one.
"""

from __future__ import annotations

import hmac
import re
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from carewall.errors import ConflictError, InputError, NotFoundError, UnavailableError
from carewall.service import tables as t
from carewall.service.codes import hash_code
from carewall.service.logentries import rfc3339
from carewall.service.notices import Notice, OutboxChannel
from carewall.service.statements import _event_row

if TYPE_CHECKING:
    from carewall.service.facade import Service

__all__ = ["Letter", "kept_letter", "notice_contacts", "resend_letter"]

# an access code: 22 characters of the URL-safe base64 alphabet (see service.codes)
_CODE_LIKE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_LIST_HINT = "list them with `carewall notices list`"


@dataclass(frozen=True)
class Letter:
    """A letter as the person received it (holds their access code: never log it)."""

    notice_id: int
    request_id: str
    to: str | None
    subject: str
    body: str
    kept_at: str


def notice_contacts(svc: Service, notice_ids: Sequence[int]) -> dict[int, str | None]:
    """Where each notice is addressed (the subject's contact; personal data)."""
    if not notice_ids:
        return {}
    q = (
        sa.select(t.notices.c.id, t.subjects.c.contact)
        .join(
            t.subjects,
            (t.subjects.c.request_id == t.notices.c.request_id)
            & (t.subjects.c.position == t.notices.c.position),
        )
        .where(t.notices.c.id.in_(list(notice_ids)))
    )
    with svc.store.read() as conn:
        return {int(i): c for i, c in conn.execute(q).all()}


def _holds_code(body: str, code_hash: str | None) -> bool:
    """Whether ``body`` carries the access code whose hash is ``code_hash``."""
    if not code_hash:
        return False
    return any(hmac.compare_digest(hash_code(word), code_hash) for word in _CODE_LIKE.findall(body))


def kept_letter(svc: Service, notice_id: int) -> Letter:
    """The letter of notice ``notice_id`` as sent, with the access code that still works.

    Refused (never made up) when no such letter is kept: the notice does not exist, is
    deferred, is not delivered yet, or went by SMTP.
    """
    with svc.store.read() as conn:
        notice = conn.execute(sa.select(t.notices).where(t.notices.c.id == notice_id)).first()
        if notice is None:
            raise NotFoundError("no such notice", field="notice_id", fix=_LIST_HINT)
        code_hash = conn.execute(
            sa.select(t.subjects.c.code_hash).where(
                (t.subjects.c.request_id == notice.request_id)
                & (t.subjects.c.position == notice.position)
            )
        ).scalar()
        kept = conn.execute(
            sa.select(t.outbox)
            .where(t.outbox.c.notice_id == notice_id)
            .order_by(t.outbox.c.id.desc())
        ).all()
    if notice.status == "deferred":
        raise ConflictError(
            f"the notice is deferred until {notice.review_date}: no letter has been sent",
            field="notice_id",
            fix=f"a reviewer may lift it with `carewall deferral lift {notice.request_id}`",
        )
    if notice.delivered_at is None:
        raise ConflictError(
            "the letter has not been sent yet",
            field="notice_id",
            fix="`carewall serve` sends every notice that is due when it starts",
        )
    if not kept:
        raise ConflictError(
            f"the letter went by {notice.channel or 'a channel that keeps no copy'} and is not "
            "kept (only its access code's hash is)",
            field="notice_id",
            fix="the person's own letter holds their code; a copy cannot be made",
        )
    # the newest kept letter whose code still works (a letter sent again is the same letter)
    for row in kept:
        if _holds_code(row.body, code_hash):
            return Letter(
                notice_id, notice.request_id, row.recipient, row.subject, row.body, row.created_at
            )
    raise ConflictError(
        "the kept letter's access code was replaced by a later delivery",
        field="notice_id",
        fix="the person's latest letter holds their code",
    )


def resend_letter(svc: Service, notice_id: int) -> tuple[Letter, str]:
    """Send the kept letter of ``notice_id`` again, unchanged; returns it and the channel.

    Through the service's channel: the outbox takes a second copy to post; SMTP mails it
    to the address the letter was sent to. The resend is noted in the request's events
    (no ledger entry: nothing new is disclosed).
    """
    letter = kept_letter(svc, notice_id)
    notice = Notice(letter.notice_id, letter.request_id, letter.to, letter.subject, letter.body)
    channel = svc.channel
    if not isinstance(channel, OutboxChannel):
        try:
            channel.send(notice)
        except (OSError, smtplib.SMTPException) as e:
            raise UnavailableError(
                f"the {channel.name} channel did not take the letter",
                field="notice_id",
                fix=f"try again later, or print it with `carewall notices print {notice_id}`",
            ) from e
        except InputError as e:  # e.g. no address to mail it to
            raise InputError(
                e.message,
                field=e.field,
                fix=f"print it with `carewall notices print {notice_id}` and post it",
            ) from e
    with svc._writer_turn, svc.store.write() as conn:
        if isinstance(channel, OutboxChannel):
            channel.send_in(conn, [notice])
        detail = {"notice": notice_id, "channel": channel.name}
        now = rfc3339(svc.clock())
        conn.execute(
            t.events.insert(),
            _event_row(letter.request_id, "notice_resent", now, None, None, detail),
        )
    return letter, channel.name
