"""One access code per subject's notice for its whole life: derived when needed, never stored.

A subject's access code is

    code = base64url(HMAC-SHA256(K, "carewall/access-code/v1" | request id | position)[:16])

with ``K = HMAC-SHA256(log signing key, "carewall/notice-codes/v1")``: 128 bits, 22
characters, the same form as the random codes issued before. Why derived:

- Every delivery of the same notice gives the same code. A worker that dies after the
  letter left but before it was marked, or a claim freed after its lease, re-sends the
  letter with the code the person already holds; the first letter is never voided.
- Nothing has to keep the code. The database keeps only its SHA-256
  (``svc_subjects.code_hash``), as before; ``K`` comes from the log's signing key file
  (0600, outside the database), which every process that delivers already holds because
  it signs the checkpoints the notices' proofs are against. Whoever reads the database (a
  backup, a replica) learns no code, except from the letters the outbox keeps by design
  for the holder to post.
- Every process on the same database derives the same code, so a notice can be finished
  by whichever worker is alive.

Codes are personal data: never log one, and never put one in an error message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING

from carewall.errors import UnavailableError

if TYPE_CHECKING:
    from carewall.ledger import Ledger

__all__ = ["CodeMaker", "code_maker", "hash_code"]

_KEY_LABEL = b"carewall/notice-codes/v1"
_CODE_LABEL = b"carewall/access-code/v1"


def hash_code(code: str) -> str:
    """The stored form of a subject's access code (the code itself is only in the letter)."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


class CodeMaker:
    """Derives subjects' access codes from one secret (holds the secret: never log it)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def code(self, request_id: str, position: int) -> str:
        msg = b"\n".join((_CODE_LABEL, request_id.encode("utf-8"), str(position).encode("ascii")))
        digest = hmac.new(self._key, msg, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def __repr__(self) -> str:  # never show the secret
        return "CodeMaker(<secret>)"


def code_maker(ledger: Ledger) -> CodeMaker:
    """The code maker of the instance whose log ``ledger`` is (needs its signing key)."""
    key = ledger.derive_secret(_KEY_LABEL)
    if key is None:
        raise UnavailableError(
            "delivering notices needs the log's signing key (access codes are derived from "
            "it), and this instance was opened without it",
            field="--key",
            fix="run delivery where the log key is (`carewall serve` or `carewall jobs run` "
            "with --key)",
        )
    return CodeMaker(key)
