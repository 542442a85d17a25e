"""Deletion certificates: what a purge deleted, signed with the log key (pure, no I/O).

A certificate is a C2SP signed note (https://c2sp.org/signed-note) whose text is two lines:
the header :data:`HEADER` and the certificate's body as RFC 8785 canonical JSON
(https://www.rfc-editor.org/rfc/rfc8785). It is signed with the instance's Ed25519 log key,
so it is checked with the same pinned verifier key as the log's checkpoints; the header is
never a log origin, so a certificate can never be taken for a checkpoint (or the reverse).
The ``deletion`` ledger entry (contract §6) holds ``sha256:<hex>`` of the certificate
file's exact bytes: ``sha256sum`` on the file matches it.

The body holds ids, counts, column and table names, dates and hashes, never a deleted
value. Each purged column carries an HMAC-SHA256 commitment under the holder's secret key
over the deleted values (sorted, each length-prefixed), so the holder can later prove what
was deleted, to someone it gives the key and the values, without the certificate revealing
anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from collections.abc import Iterable, Mapping
from typing import Any

from carewall.errors import InputError, VerificationError
from carewall.ledger.canonical import canonical, parse_entry
from carewall.ledger.note import Signer, Verifier, open_note, sign_note

__all__ = [
    "HEADER",
    "ValueCommitment",
    "certificate_body",
    "certificate_sha256",
    "check_entry_matches",
    "open_certificate",
    "public_json",
    "sign_certificate",
]

HEADER = "carewall/deletion-certificate/v1"
_DOMAIN = b"carewall deletion commitment v1\x00"


class ValueCommitment:
    """HMAC-SHA256(holder key, domain ‖ table ‖ column ‖ each value, in sorted order).

    Values MUST be added in ascending order (the scan sorts them), each as UTF-8 text
    prefixed by its 8-byte big-endian length, so no two lists of values share a commitment.
    """

    def __init__(self, key: bytes, table: str, column: str) -> None:
        self._mac = hmac.new(key, _DOMAIN, hashlib.sha256)
        for part in (table, column):
            self._add(part.encode())
        self.count = 0

    def _add(self, data: bytes) -> None:
        self._mac.update(struct.pack(">Q", len(data)) + data)

    def add(self, values: Iterable[str]) -> None:
        for v in values:
            self._add(v.encode("utf-8", "surrogatepass"))
            self.count += 1

    def hexdigest(self) -> str:
        return "hmac-sha256:" + self._mac.hexdigest()


def sign_certificate(body: Mapping[str, Any], signer: Signer) -> str:
    """The signed certificate file's text."""
    if body.get("type") != HEADER:
        raise InputError("a certificate body must say its type", field="type")
    return sign_note(f"{HEADER}\n{canonical(dict(body)).decode()}\n", [signer])


def certificate_sha256(text: str | bytes) -> str:
    """``sha256:<hex>`` of the certificate file's bytes, as the ``deletion`` entry holds it."""
    data = text.encode() if isinstance(text, str) else text
    return "sha256:" + hashlib.sha256(data).hexdigest()


def open_certificate(text: str | bytes, verifier: Verifier) -> dict[str, Any]:
    """Verify the signature with the pinned key and return the body; VerificationError else."""
    try:
        note = open_note(text, [verifier])
    except InputError as e:
        raise VerificationError(
            "the certificate is not a signed note", field="FILE", fix="pass the certificate file"
        ) from e
    except VerificationError as e:
        if e.message.startswith("malformed"):
            why, fix = "the certificate is not a signed note", "pass the certificate file"
        elif "no verifiable" in e.message:
            why = "the certificate is not signed by the given key"
            fix = "pass the log's verifier key, as its operator published it"
        else:
            why = "the certificate's signature does not verify: it was altered after signing"
            fix = "obtain the original certificate from the holder"
        raise VerificationError(why, field="FILE", fix=fix) from e
    return certificate_body(note.text)


def certificate_body(text: str) -> dict[str, Any]:
    """The body of a certificate note's signed ``text`` (the header line, then canonical
    JSON holding every field a certificate has); VerificationError naming what is wrong.

    The signature is the caller's to check first: :func:`open_certificate` with the key it
    pins, the outside auditor with the key the log pinned (:mod:`carewall.audit.certificates`).
    """
    lines = text.split("\n")
    if len(lines) != 3 or lines[0] != HEADER or lines[2] != "":
        raise VerificationError(f"the signed text is not a {HEADER} certificate", field="FILE")
    try:
        body = parse_entry(lines[1])
    except InputError as e:
        raise VerificationError("the certificate's body is not valid JSON", field="FILE") from e
    if canonical(body).decode() != lines[1]:
        raise VerificationError("the certificate's body is not canonical JSON", field="FILE")
    for key in ("holder", "categories", "records", "tables", "post_purge_scan"):
        if key not in body:
            raise VerificationError(f"the certificate has no {key!r}", field="FILE")
    return body


def check_entry_matches(body: Mapping[str, Any], entry: Mapping[str, Any]) -> None:
    """The ``deletion`` entry MUST name the certificate's holder, categories and records."""
    for key in ("holder", "categories", "records"):
        mine, logged = body.get(key), entry.get(key)
        if key == "categories" and isinstance(mine, list) and isinstance(logged, list):
            mine, logged = sorted(mine), sorted(logged)
        if mine != logged:
            raise VerificationError(
                f"the log's deletion entry and the certificate differ in {key!r}",
                field=key,
                fix="the certificate is not the one this entry records",
            )


def public_json(body: Mapping[str, Any]) -> str:
    """The body, indented, for people to read."""
    return json.dumps(body, indent=2, ensure_ascii=False)
