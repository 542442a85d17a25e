"""C2SP tlog-checkpoint: the signed statement of a log's size and root.

Spec: https://c2sp.org/tlog-checkpoint — the note text is ``origin\\nsize\\nbase64(root)\\n``
followed by optional non-empty extension lines; the log's signature is by a key whose name is
the origin.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from carewall.errors import InputError, VerificationError
from carewall.ledger.note import (
    ALG_COSIGNATURE_V1,
    Signer,
    Verifier,
    open_note,
    parse_note,
    sign_note,
)
from carewall.types import HASH_SIZE, RootHash

__all__ = ["Checkpoint", "open_checkpoint", "parse_checkpoint", "sign_checkpoint"]

_MAX_SIZE = 2**64 - 1


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: RootHash
    extensions: tuple[str, ...] = ()

    def to_text(self) -> str:
        """The checkpoint body, every line newline-terminated."""
        head = f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"
        return head + "".join(f"{e}\n" for e in self.extensions)


def _bad(line: str, why: str) -> VerificationError:
    return VerificationError(f"checkpoint {line} line: {why}", field=f"checkpoint.{line}")


def parse_checkpoint(text: str, *, hash_size: int | None = HASH_SIZE) -> Checkpoint:
    """Parse a checkpoint body strictly; errors name the bad line.

    ``hash_size=None`` accepts a root of any length (only for foreign test vectors).
    """
    if not text.endswith("\n"):
        raise _bad("last", "the body must end with a newline")
    lines = text[:-1].split("\n")
    origin = lines[0]
    if not origin or origin != origin.strip():
        raise _bad("origin", "must be non-empty, without surrounding space")
    if len(lines) < 2:
        raise _bad("size", "missing")
    size_s = lines[1]
    if not size_s.isascii() or not size_s.isdigit() or (size_s.startswith("0") and size_s != "0"):
        raise _bad("size", "must be a decimal number without sign or leading zeros")
    size = int(size_s)
    if size > _MAX_SIZE:
        raise _bad("size", "does not fit in 64 bits")
    if len(lines) < 3:
        raise _bad("root", "missing")
    root_s, ext = lines[2], lines[3:]
    try:
        root = base64.b64decode(root_s.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as e:
        raise _bad("root", "is not valid base64") from e
    if hash_size is not None and len(root) != hash_size:
        raise _bad("root", f"must be exactly {hash_size} bytes")
    for line in ext:
        if not line:
            raise _bad("extension", "must not be empty")
    return Checkpoint(origin=origin, size=size, root=RootHash(root), extensions=tuple(ext))


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> str:
    """Sign with the log key, whose name MUST be the checkpoint's origin."""
    if signer.name != cp.origin:
        raise InputError(
            "the log key's name must be the checkpoint origin",
            field="origin",
            fix="sign with the key created for this log",
        )
    if len(cp.root) != HASH_SIZE:
        raise InputError("checkpoint root must be exactly 32 bytes", field="root")
    text = cp.to_text()
    parse_checkpoint(text)  # refuse to sign what we would refuse to read
    return sign_note(text, [signer])


def open_checkpoint(note: str, verifiers: Sequence[Verifier]) -> Checkpoint:
    """Verify a signed checkpoint by a key named as its origin and return it.

    Witness cosignatures and other signers are ignored here; VerificationError unless the
    log's own signature verifies.
    """
    cp = parse_checkpoint(parse_note(note).text)
    log_keys = [v for v in verifiers if v.name == cp.origin and v.alg != ALG_COSIGNATURE_V1]
    open_note(note, log_keys)
    return cp
