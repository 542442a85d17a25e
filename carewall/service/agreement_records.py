"""The agreements register as read: one agreement's record, and the register listed.

Each record is one row of the ``agreements`` table, as the steps of
:mod:`carewall.service.agreements` leave it; its ``overdue`` flag is judged on the
service's clock (:func:`today`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Connection, Row

from carewall.clean.certificate import certificate_sha256
from carewall.errors import ConflictError, InputError, NotFoundError
from carewall.ids import check_id
from carewall.service import tables as t

if TYPE_CHECKING:
    from carewall.service.facade import Service

__all__ = [
    "AgreementRecord",
    "agreement_record",
    "agreement_row",
    "get_agreement",
    "list_agreements",
    "publish_certificate",
    "published_certificate",
    "today",
]

State = Literal["registered", "refused", "withdrawn", "destroyed"]


class AgreementRecord(BaseModel):
    """One agreement in the holder's register (the title is the only words; no person)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    state: State
    title: str | None
    terms: dict[str, Any]
    rules: list[str]
    text_sha256: str | None
    recipient_key: str | None
    registered_at: str
    registered_index: int
    withdrawn_at: str | None
    withdrawn_index: int | None
    releases: int | None
    subjects: int | None
    released: list[str]
    due: str | None
    overdue: bool  # destruction due before today (the service's clock) and not done
    destroyed_at: str | None
    destroyed_index: int | None
    certificate: str | None
    deletion_index: int | None


def agreement_record(row: Row[Any], day: str) -> AgreementRecord:
    """The record of an ``agreements`` row, ``overdue`` judged on ``day`` (``YYYY-MM-DD``)."""
    m = row._mapping
    return AgreementRecord(
        id=m["id"],
        state=m["state"],
        title=m["title"],
        terms=json.loads(m["terms"]),
        rules=json.loads(m["rules"]),
        text_sha256=m["text_sha256"],
        recipient_key=m["recipient_key"],
        registered_at=m["registered_at"],
        registered_index=int(m["registered_index"]),
        withdrawn_at=m["withdrawn_at"],
        withdrawn_index=m["withdrawn_index"],
        releases=m["releases"],
        subjects=m["subjects"],
        released=json.loads(m["released"] or "[]"),
        due=m["due"],
        overdue=m["state"] == "withdrawn" and m["due"] is not None and m["due"] < day,
        destroyed_at=m["destroyed_at"],
        destroyed_index=m["destroyed_index"],
        certificate=m["certificate"],
        deletion_index=m["deletion_index"],
    )


def today(svc: Service) -> str:
    """Today on the service's clock (``YYYY-MM-DD``): the day ``overdue`` is judged on."""
    return svc.clock().date().isoformat()


def agreement_row(conn: Connection, agreement_id: str, *, lock: bool = False) -> Row[Any]:
    """The agreement's row (``lock``: FOR UPDATE); NotFoundError when there is none."""
    query = sa.select(t.agreements).where(t.agreements.c.id == agreement_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFoundError("no such agreement", field="id", fix="carewall agreement list")
    return row


def get_agreement(svc: Service, agreement_id: str) -> AgreementRecord:
    check_id(agreement_id, "organisation", field="id")
    with svc.store.read() as conn:
        return agreement_record(agreement_row(conn, agreement_id), today(svc))


def list_agreements(
    svc: Service,
    *,
    holder: str | None = None,
    after: str | None = None,
    limit: int | None = None,
    overdue: bool = False,
) -> list[AgreementRecord]:
    """Agreements by id (keyset paging: ids after ``after``); ``overdue``: destruction late."""
    query = sa.select(t.agreements).order_by(t.agreements.c.id)
    if holder is not None:
        query = query.where(t.agreements.c.holder == holder)
    if after is not None:
        query = query.where(t.agreements.c.id > after)
    day = today(svc)
    if overdue:
        query = query.where(t.agreements.c.state == "withdrawn", t.agreements.c.due < day)
    if limit is not None:
        query = query.limit(limit)
    with svc.store.read() as conn:
        return [agreement_record(r, day) for r in conn.execute(query)]


_PUBLISHED = sa.select(t.agreements.c.certificate_text).where(
    t.agreements.c.certificate == sa.bindparam("sha")
)


def published_certificate(svc: Service, sha256: str) -> bytes | None:
    """The certificate file a ``destroyed`` entry names by ``sha256:<hex>``, as registered
    (None: no destruction names it, or it was registered before its text was kept)."""
    with svc.store.read() as conn:
        text = conn.execute(_PUBLISHED, {"sha": sha256}).scalar()
    return None if text is None else str(text).encode("utf-8")


def publish_certificate(svc: Service, agreement_id: str, certificate: bytes) -> None:
    """Keep, to serve, the certificate a destruction registered before its text was kept
    (migration 0013): it must be the very file whose hash the ``destroyed`` entry logged,
    so nothing in the log changes and no other certificate can be put in its place."""
    check_id(agreement_id, "organisation", field="id")
    sha = certificate_sha256(certificate)
    with svc.store.write() as conn:
        row = agreement_row(conn, agreement_id, lock=True)
        if row.state != "destroyed" or row.certificate is None:
            raise ConflictError(
                "has no destruction registered, so no certificate to publish",
                field="id",
                fix="register the destruction with `carewall agreement destroyed`",
            )
        if sha != row.certificate:
            raise InputError(
                "is not the certificate the log's destroyed entry names",
                field="certificate",
                fix=f"give the file whose SHA-256 is {row.certificate.removeprefix('sha256:')}",
            )
        try:
            text = certificate.decode("utf-8")
        except UnicodeDecodeError as e:  # the logged hash names it, but keep it honest
            raise InputError("is not UTF-8 text", field="certificate") from e
        conn.execute(
            sa.update(t.agreements)
            .where(t.agreements.c.id == agreement_id)
            .values(certificate_text=text)
        )
