"""Every destruction the log claims, checked against the certificate it names.

A ``destroyed`` agreement entry holds ``sha256:<hex>`` of the recipient's deletion
certificate (a C2SP signed note, :mod:`carewall.clean.certificate`), and the ``deletion``
entry just before it holds what the certificate says was deleted. The operator holds the
log key and can write both entries by hand: the hash alone proves nothing. So the server
publishes each certificate at ``/certificates/<hex>`` beside the log, and for each
destruction the replay accepted (:attr:`carewall.audit.agreements.AgreementReplay.published`)
the audit fetches it and requires that:

1. it is served at all (a hash that names no published certificate is a finding);
2. its bytes hash to the logged value;
3. it is a well-formed certificate: a signed note of the certificate header and a canonical
   JSON body, with at least one signature;
4. it is not signed with the log's own key (the holder cannot certify the recipient's
   deletion), and it verifies under the recipient's key when the agreement's registration
   pinned one in the log (``recipient_key``; without one, whose key signed it is for the
   reader to compare with the recipient's publication);
5. its body says what the ``deletion`` entry says (holder, categories, records), and it was
   issued no earlier than the day the agreement was withdrawn.

Findings stand at the ``destroyed`` entry's index and hold ids and counts, never the
certificate's text. A server that cannot answer (a 5xx, a broken connection) is a
:class:`~carewall.audit.fetch.FetchError`: not audited, never a verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from carewall.audit.fetch import FetchError, get_beside, log_base
from carewall.clean.certificate import (
    HEADER,
    certificate_body,
    certificate_sha256,
    check_entry_matches,
)
from carewall.errors import InputError, VerificationError
from carewall.ledger.note import Verifier, open_note, parse_note

if TYPE_CHECKING:
    from carewall.audit.replay import Replay

__all__ = ["MAX_BYTES", "Owed", "certificates_url", "check_certificates", "judge"]

MAX_BYTES = 1 << 20  # a certificate lists tables and columns: far below this


@dataclass(frozen=True)
class Owed:
    """A destruction the replay accepted, whose certificate is still to be seen."""

    index: int  # the destroyed entry
    certificate: str  # sha256:<hex>
    deletion: Mapping[str, Any]  # holder, categories, records, as the deletion entry says
    withdrawn_day: str  # YYYY-MM-DD of the agreement's withdrawal
    recipient_key: str | None = None  # the verifier key its registration pinned, if any


def certificates_url(url: str) -> str:
    """``/certificates/`` beside the log at ``url`` (the server's base URL or its /log)."""
    return log_base(url).removesuffix("/log") + "/certificates/"


def judge(data: bytes | None, owed: Owed, log_key: Verifier) -> str | None:
    """What is wrong with the certificate served for ``owed`` (None if nothing is)."""
    if data is None:
        return (
            f"names the certificate {owed.certificate}, which the log does not publish at "
            "/certificates/; a destruction is shown by the recipient's certificate, not a hash"
        )
    if certificate_sha256(data) != owed.certificate:
        return "is answered at /certificates/ by a file whose SHA-256 is not field 'certificate'"
    body = _body(data)
    if body is None:
        return "names a published file that is not a signed deletion certificate"
    try:
        open_note(data, [log_key])
    except (InputError, VerificationError):
        pass
    else:
        return (
            "names a certificate signed with the log's own key: the holder cannot certify "
            "the recipient's deletion"
        )
    if owed.recipient_key is not None and not _signed_by(data, owed.recipient_key):
        return (
            "names a certificate that does not verify under the recipient's key its "
            "registration pinned"
        )
    try:
        check_entry_matches(body, owed.deletion)
    except VerificationError as e:
        return f"names a certificate that and the deletion entry before it differ in {e.field!r}"
    issued = body.get("issued")
    if not isinstance(issued, str) or issued[:10] < owed.withdrawn_day:
        return "names a certificate issued before the agreement was withdrawn"
    return None


def _signed_by(data: bytes, vkey: str) -> bool:
    try:
        open_note(data, [Verifier.from_vkey(vkey)])
    except Exception:  # a key that does not parse (a finding at registration) verifies nothing
        return False
    return True


def _body(data: bytes) -> dict[str, Any] | None:
    """The certificate's body if ``data`` is a signed note of one, else None."""
    try:
        note = parse_note(data)
        body = certificate_body(note.text)
    except (InputError, VerificationError, UnicodeError, ValueError):
        return None
    if not note.signatures or body.get("type") != HEADER:
        return None
    return body


def _fetch(client: httpx.Client, url: str) -> bytes | None:
    """The file at ``url`` (None for a 404 or a body past MAX_BYTES); FetchError else."""
    status, body = get_beside(client, url, MAX_BYTES, "/certificates/")
    if status == 404:
        return None
    if status != 200:
        raise FetchError(f"/certificates/ answered HTTP {status}", fix="try again later")
    return body


def check_certificates(rp: Replay, client: httpx.Client, url: str, log_key: Verifier) -> None:
    """Fetch and judge every certificate owed by the destructions the replay accepted."""
    base = certificates_url(url)
    for owed in rp.agreements.published:
        data = _fetch(client, base + owed.certificate.removeprefix("sha256:"))
        problem = judge(data, owed, log_key)
        if problem is not None:
            rp.find(owed.index, "agreement", problem)
    rp.agreements.published.clear()
