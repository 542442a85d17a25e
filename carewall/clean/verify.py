"""Check a deletion certificate against the public log, as an outsider.

1. The certificate's signature MUST verify under the pinned verifier key (given from
   outside, as for ``carewall audit``), see :func:`carewall.clean.certificate.open_certificate`.
2. The log's checkpoint MUST verify under the same key (C2SP tlog-checkpoint).
3. A ``deletion`` entry whose ``certificate`` is the file's SHA-256 MUST be in the log: the
   entries are read from the C2SP tlog-tiles entry bundles (:mod:`carewall.audit.fetch`),
   and the entry's RFC 9162 inclusion proof MUST lead to the signed checkpoint's root.
4. That entry MUST name the certificate's holder, categories and record count.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import httpx

from carewall.audit.fetch import (
    entry_bundles,
    get,
    log_base,
    open_log_checkpoint,
    verifier_for,
)
from carewall.clean.certificate import certificate_sha256, check_entry_matches, open_certificate
from carewall.errors import VerificationError
from carewall.ledger.merkle import hash_leaf, verify_inclusion

__all__ = ["Verified", "verify_certificate"]


@dataclass(frozen=True)
class Verified:
    body: dict[str, Any]
    sha256: str
    index: int  # the deletion entry's index in the log
    size: int  # the signed checkpoint's size it was proved under
    origin: str


def _find(client: httpx.Client, size: int, sha: str) -> tuple[int, bytes, dict[str, Any]]:
    for first, bundle in entry_bundles(client, 0, size):
        for k, data in enumerate(bundle):
            if sha.encode() not in data:  # cheap pre-filter before parsing
                continue
            try:
                entry = json.loads(data)
            except ValueError:
                continue
            if entry.get("kind") == "deletion" and entry.get("certificate") == sha:
                return first + k, data, entry
    raise VerificationError(
        "no deletion entry in the log records this certificate",
        field="FILE",
        fix="the deletion was not logged, or the certificate was altered",
    )


def verify_certificate(
    text: str | bytes, url: str, vkey: str, *, client: httpx.Client | None = None
) -> Verified:
    """All four checks above; VerificationError (or FetchError) on the first that fails."""
    verifier = verifier_for(vkey)
    body = open_certificate(text, verifier)
    sha = certificate_sha256(text)
    own = client is None
    http = client or httpx.Client(base_url=log_base(url) + "/", timeout=30.0)
    try:
        _note, cp = open_log_checkpoint(http, verifier)
        if body.get("log") not in (None, cp.origin):
            raise VerificationError(
                "the certificate names another log", field="--log", fix="pass the holder's log"
            )
        index, data, entry = _find(http, cp.size, sha)
        r = get(http, f"proof/inclusion?index={index}&size={cp.size}")
        assert r is not None
        try:
            proof = [base64.b64decode(h, validate=True) for h in r.json()["proof"]]
        except (ValueError, KeyError, TypeError, binascii.Error) as e:
            raise VerificationError("the log served a malformed inclusion proof") from e
        verify_inclusion(index, cp.size, hash_leaf(data), proof, cp.root)
        check_entry_matches(body, entry)
    finally:
        if own:
            http.close()
    return Verified(body, sha, index, cp.size, cp.origin)
