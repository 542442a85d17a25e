"""Recording deletions: the ``deletion`` ledger entry (contract §6) for a signed certificate.

The entry holds the holder's id, the categories, the number of records and the SHA-256 of
the certificate file, nothing else. The purged source is committed inside the ledger's
write transaction, after the entry is appended and before that transaction commits (see
:mod:`carewall.clean.purge`): a failure before then leaves both as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from carewall.clean.certificate import certificate_sha256
from carewall.entries import DeletionEntry
from carewall.errors import InputError
from carewall.ids import check_id
from carewall.ledger.keys import default_key_path, load_key
from carewall.ledger.note import Signer
from carewall.service import logentries as le
from carewall.service.registry import holder_key

if TYPE_CHECKING:
    from carewall.service.facade import Service

__all__ = ["deletion_entry", "deletion_key", "deletion_signer", "record_deletion", "recorder"]


def deletion_entry(body: Mapping[str, Any], certificate: str, time: str) -> DeletionEntry:
    """The public entry for ``certificate`` (the file's text), from its body's ids and counts."""
    categories = sorted({check_id(c, "vocab", field="categories") for c in body["categories"]})
    records = body["records"]
    if not isinstance(records, int) or isinstance(records, bool) or records < 0:
        raise InputError("must be a whole number of records", field="records")
    return {
        "v": 1,
        "kind": "deletion",
        "time": time,
        "holder": check_id(body["holder"], "organisation", field="holder"),
        "categories": categories,
        "records": records,
        "certificate": certificate_sha256(certificate),
    }


def _check_holder(svc: Service, holder: str) -> None:
    svc.register().organisation(holder, field_name="--holder")


def deletion_key(svc: Service, holder: str) -> bytes:
    """The holder's secret commitment key (the one behind subject commitments)."""
    _check_holder(svc, holder)
    with svc.store.write() as conn:
        return holder_key(conn, holder)


def deletion_signer(svc: Service, db_url: str | None, key_path: str | Path | None) -> Signer:
    """The log's signing key, which MUST be this instance's (certificates share its key)."""
    signer = load_key(Path(key_path) if key_path else default_key_path(db_url))
    if signer.vkey() != svc.ledger.verifier_key:
        raise InputError(
            "the key file does not belong to this instance's log",
            field="--key",
            fix="pass the key file written by `carewall init` for this database",
        )
    return signer


def record_deletion(
    svc: Service,
    write: Callable[[], AbstractContextManager[Connection]],
    certificate: str,
    body: Mapping[str, Any],
    before_commit: Callable[[], None] | None = None,
) -> int:
    """Append the entry in one ledger transaction; ``before_commit`` runs last inside it."""
    _check_holder(svc, str(body.get("holder")))
    entry = deletion_entry(body, certificate, le.rfc3339(svc.clock()))
    with write() as conn:
        index = svc.ledger.append_in(conn, [entry])[0]
        if before_commit is not None:
            before_commit()
    return index


def recorder(svc: Service) -> Callable[[str, Mapping[str, Any], Callable[[], None]], int]:
    """A :class:`carewall.clean.purge.Recorder` that writes to ``svc``'s log."""

    def record(certificate: str, body: Mapping[str, Any], commit: Callable[[], None]) -> int:
        return svc.record_deletion(certificate, body, before_commit=commit)

    return record
