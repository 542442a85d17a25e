"""The agreements register: standing data-sharing agreements, decided, logged and tracked.

Each step is one writer transaction holding the row change and its ``agreement`` ledger
entry (see :mod:`carewall.policy.agreements` for how the pledge is applied):

- **register**: the terms are decided by the instance's engine (pledge and local policy);
  an agreement any pledge rule forbids is **refused**: the attempt is logged (action
  ``refused``, naming the rules) and kept, so the id is used up and the attempt is public.
- **withdraw**: what was released under it is counted from the log itself, inside the
  transaction, under the ledger's append lock, so the count is exactly what an auditor
  counts from the entries before the ``withdrawn`` entry. If anything went, destruction is
  asked for, due ``due_days`` days later (30 by default).
- **destroyed**: the recipient's signed deletion certificate is checked under the
  recipient's verifier key (pinned at registration, or given), must name the recipient
  and cover every category released, and must be issued on or after the withdrawal; its
  ``deletion`` entry and the ``destroyed`` entry are appended together.

Each step answers with the agreement's record as the register now holds it; reading the
register is :mod:`carewall.service.agreement_records`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from carewall.clean.certificate import certificate_sha256, open_certificate
from carewall.deadlines import MAX_DESTRUCTION_DAYS
from carewall.entries import AgreementEntry
from carewall.errors import ConflictError, InputError
from carewall.ids import check_id
from carewall.ledger import proofs, sequencer
from carewall.ledger.canonical import parse_entry
from carewall.ledger.note import Verifier
from carewall.policy.agreements import Agreement, Released, ReleaseIndex, pledge_breaches
from carewall.service import logentries as le
from carewall.service import tables as t
from carewall.service.agreement_records import (
    AgreementRecord,
    agreement_record,
    agreement_row,
    today,
)
from carewall.service.deletions import deletion_entry

if TYPE_CHECKING:
    from carewall.service.facade import Service

__all__ = [
    "DEFAULT_DUE_DAYS",
    "destroyed",
    "register_agreement",
    "released_so_far",
    "withdraw_agreement",
]

DEFAULT_DUE_DAYS = 30
Writer = Callable[[], AbstractContextManager[Connection]]
_CHUNK = 1000


def _entry(
    svc: Service, conn: Connection, action: str, agreement: str, terms: dict[str, Any], **more: Any
) -> AgreementEntry:
    """The entry for ``action``; ``terms`` hold the parties' functions as registered."""
    entry: dict[str, Any] = {
        "v": 1,
        "kind": "agreement",
        "time": le.rfc3339(svc.clock()),
        "agreement": agreement,
        "action": action,
        **terms,
        "rules": [],
        "policy": svc.engine(conn).policy_hash,
        "text": None,
        "releases": None,
        "subjects": None,
        "released": [],
        "due": None,
        "certificate": None,
    }
    entry.update(more)
    return entry  # type: ignore[return-value]


def register_agreement(svc: Service, write: Writer, agreement: Agreement) -> AgreementRecord:
    """Decide ``agreement`` and log it: ``registered``, or ``refused`` naming the rules."""
    terms = agreement.terms()
    with write() as conn:
        register = svc.register(conn)
        for who in ("holder", "recipient"):  # each named by its own field, never a guess
            terms[f"{who}_function"] = register.organisation(terms[who], field_name=who).function
        if conn.execute(
            sa.select(t.agreements.c.id).where(t.agreements.c.id == agreement.id)
        ).first():
            raise ConflictError(
                "an agreement with this id was already put forward",
                field="id",
                fix="give every agreement its own id; an id is never reused, even when refused",
            )
        rules = pledge_breaches(svc.engine(conn), register, terms)
        action = "refused" if rules else "registered"
        pinned = agreement.recipient_key
        if pinned and _material(pinned) == _material(svc.ledger.verifier_key):
            raise InputError(
                "is this instance's own log key: the holder cannot certify the recipient's "
                "deletion",
                field="recipient_key",
                fix="pin the key the recipient publishes for its own log",
            )
        entry = _entry(
            svc, conn, action, agreement.id, terms, rules=rules, text=agreement.text_sha256
        )
        if pinned and action == "registered":  # the key its certificate must verify under
            entry["recipient_key"] = pinned
        index = svc.ledger.append_in(conn, [entry])[0]
        conn.execute(
            sa.insert(t.agreements).values(
                id=agreement.id,
                holder=agreement.holder,
                recipient=agreement.recipient,
                state=action,
                terms=json.dumps(terms),
                rules=json.dumps(rules),
                title=agreement.title,
                text_sha256=agreement.text_sha256,
                recipient_key=agreement.recipient_key,
                registered_at=entry["time"],
                registered_index=index,
            )
        )
        return agreement_record(agreement_row(conn, agreement.id), today(svc))


def _release_index(conn: Connection) -> ReleaseIndex:
    """Every release entry in the log so far (under the ledger's append lock: exact)."""
    index = ReleaseIndex()
    size = proofs.current_size(conn)
    for start in range(0, size, _CHUNK):
        for data in proofs.entries(conn, start, min(size, start + _CHUNK)):
            if b'"kind":"release"' in data:
                index.feed(parse_entry(data))
    return index


def released_so_far(svc: Service, records: Iterable[AgreementRecord]) -> dict[str, Released]:
    """What the log has released so far under each of ``records``, by id: counted as
    :func:`withdraw_agreement` counts it, in a read (so as of now). One pass over the log."""
    wanted = list(records)
    if not wanted:
        return {}
    with svc.store.read() as conn:
        index = _release_index(conn)
    return {r.id: index.under(r.terms) for r in wanted}


def withdraw_agreement(
    svc: Service, write: Writer, agreement_id: str, *, due_days: int = DEFAULT_DUE_DAYS
) -> AgreementRecord:
    """Withdraw a registered agreement; count what went under it; ask for its destruction."""
    check_id(agreement_id, "organisation", field="id")
    if isinstance(due_days, bool) or not 1 <= due_days <= MAX_DESTRUCTION_DAYS:
        raise InputError(
            f"must be 1 to {MAX_DESTRUCTION_DAYS} days", field="due_days", fix="e.g. 30"
        )
    with write() as conn:
        row = agreement_row(conn, agreement_id, lock=True)
        if row.state != "registered":
            raise ConflictError(
                f"the agreement is {row.state}, not registered",
                field="id",
                fix="only a registered agreement can be withdrawn, once",
            )
        sequencer.lock(conn)  # no entry can be sequenced between the count and our entry
        terms = json.loads(row.terms)
        went = _release_index(conn).under(terms)
        due = (svc.clock().date() + timedelta(days=due_days)).isoformat() if went.releases else None
        counts = {
            "releases": went.releases,
            "subjects": went.subjects,
            "released": list(went.categories),
            "due": due,
        }
        entry = _entry(svc, conn, "withdrawn", agreement_id, terms, text=row.text_sha256, **counts)
        index = svc.ledger.append_in(conn, [entry])[0]
        conn.execute(
            sa.update(t.agreements)
            .where(t.agreements.c.id == agreement_id)
            .values(
                state="withdrawn",
                withdrawn_at=entry["time"],
                withdrawn_index=index,
                releases=went.releases,
                subjects=went.subjects,
                released=json.dumps(list(went.categories)),
                due=due,
            )
        )
        return agreement_record(agreement_row(conn, agreement_id), today(svc))


def _material(vkey: str) -> str:
    """The base64 of a parsed vkey's algorithm and public key (its last part)."""
    return vkey.strip().rsplit("+", 1)[-1]


def _verifier(row: Row[Any], given: str | None, own: str) -> Verifier:
    """The recipient's key: pinned at registration, or ``given`` now when none was; never
    this instance's own log key ``own`` (the holder cannot certify the recipient's
    deletion)."""
    pinned = row.recipient_key
    if pinned and given and pinned.strip() != given.strip():
        raise InputError(
            "is not the recipient's key pinned when the agreement was registered",
            field="recipient_key",
            fix="leave it out to use the pinned key, or check the recipient's publication",
        )
    vkey = given or pinned
    if not vkey:
        raise InputError(
            "is needed: the agreement pins no key for the recipient",
            field="recipient_key",
            fix="pass the recipient's published verifier key (name+hex8+base64)",
        )
    try:
        verifier = Verifier.from_vkey(vkey.strip())
    except (ValueError, Exception) as e:  # a malformed key, however it fails to parse
        raise InputError(
            "is not a verifier key", field="recipient_key", fix="name+hex8+base64, as published"
        ) from e
    # The key material (algorithm and public key), whatever name either is published under.
    if _material(vkey) == _material(own):
        raise InputError(
            "is this instance's own log key: the holder cannot certify the recipient's deletion",
            field="recipient_key",
            fix="use the key the recipient publishes for its own log",
        )
    return verifier


def destroyed(
    svc: Service,
    write: Writer,
    agreement_id: str,
    certificate: bytes,
    recipient_key: str | None = None,
) -> AgreementRecord:
    """Record the recipient's deletion certificate for a withdrawn agreement."""
    check_id(agreement_id, "organisation", field="id")
    with write() as conn:
        row = agreement_row(conn, agreement_id, lock=True)
        if row.state != "withdrawn" or row.due is None:
            why = "nothing was released under it" if row.state == "withdrawn" else row.state
            raise ConflictError(
                f"no destruction is owed for this agreement ({why})",
                field="id",
                fix="a certificate is registered once, for a withdrawn agreement under which "
                "data was released",
            )
        own = svc.ledger.verifier_key
        body = open_certificate(certificate, _verifier(row, recipient_key, own))
        if body.get("holder") != row.recipient:
            raise InputError(
                "was issued by another organisation than the agreement's recipient",
                field="certificate",
                fix="register the certificate the recipient issued",
            )
        missing = sorted(set(json.loads(row.released)) - set(body.get("categories") or ()))
        if missing:
            raise InputError(
                "does not cover every category released under the agreement: " + ", ".join(missing),
                field="certificate",
                fix="the recipient must delete, and certify, every category it received",
            )
        records = body.get("records")
        if isinstance(records, bool) or not isinstance(records, int) or records < 1:
            raise InputError(
                "deleted no records, so it cannot answer a request to destroy data released "
                "under the agreement",
                field="certificate",
                fix="the recipient must delete the records it received, and certify that",
            )
        issued = str(body.get("issued", ""))[:10]
        if issued < str(row.withdrawn_at)[:10]:
            raise InputError(
                "was issued before the agreement was withdrawn",
                field="certificate",
                fix="a deletion made before the withdrawal cannot answer the request",
            )
        sha = certificate_sha256(certificate)
        used = conn.execute(sa.select(t.agreements.c.id).where(t.agreements.c.certificate == sha))
        if used.first() is not None:
            raise ConflictError("is already registered", field="certificate")
        terms = json.loads(row.terms)
        deletion = deletion_entry(body, certificate.decode("utf-8"), le.rfc3339(svc.clock()))
        entry = _entry(
            svc, conn, "destroyed", agreement_id, terms,
            text=row.text_sha256, releases=row.releases, subjects=row.subjects,
            released=json.loads(row.released), due=row.due, certificate=sha,
        )  # fmt: skip
        first, index = svc.ledger.append_in(conn, [deletion, entry])
        conn.execute(
            sa.update(t.agreements)
            .where(t.agreements.c.id == agreement_id)
            .values(
                state="destroyed",
                destroyed_at=entry["time"],
                destroyed_index=index,
                certificate=sha,
                deletion_index=first,
                certificate_text=certificate.decode("utf-8"),
            )
        )
        return agreement_record(agreement_row(conn, agreement_id), today(svc))
