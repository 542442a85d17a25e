"""``/certificates/<hex>``: each destruction certificate a ``destroyed`` entry names.

A ``destroyed`` agreement entry holds ``sha256:<hex>`` of the recipient's deletion
certificate (:mod:`carewall.clean.certificate`); without the file nobody outside could
tell a certificate from a hash that names nothing. The file is served here, byte for byte
as registered, so ``sha256sum`` on it gives the logged hash, and ``carewall audit`` fetches
each one its log names (:mod:`carewall.audit.certificates`). It holds ids, counts, table
and column names, dates and HMAC commitments, never a deleted value. A certificate never
changes, so it is served as immutable; anyone may read it from any origin, like ``/log/``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from carewall.api.requests import service_of
from carewall.errors import InputError, NotFoundError
from carewall.ids import is_id
from carewall.service.agreement_records import published_certificate

__all__ = ["router"]

router = APIRouter(tags=["public"])


@router.get(
    "/certificates/{sha256}",
    summary="A destruction certificate the public log names, by its SHA-256",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def certificate(request: Request, sha256: str) -> Response:
    if not is_id(sha256, "hash"):
        raise InputError(
            "is not a SHA-256 in hex",
            field="sha256",
            fix="use the 64 lowercase hex digits after 'sha256:' in the log entry",
        )
    body = published_certificate(service_of(request), "sha256:" + sha256)
    if body is None:
        raise NotFoundError(
            "no destruction certificate with this hash is published here",
            field="sha256",
            fix="check the hash against the log's destroyed entry",
        )
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable",
        "Access-Control-Allow-Origin": "*",
        "Content-Disposition": f'inline; filename="certificate-{sha256[:16]}.txt"',
    }
    return Response(body, media_type="text/plain; charset=utf-8", headers=headers)
