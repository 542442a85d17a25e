"""C2SP tlog-cosignature ``cosignature/v1`` (Ed25519): witness keys, signing, verifying.

Spec: https://c2sp.org/tlog-cosignature — a cosignature is a signed-note signature line
``— <name> base64(key ID || timestamp || signature)`` whose key ID is
``SHA-256(name || 0x0A || 0x04 || public key)[:4]`` and whose Ed25519 signature covers
``"cosignature/v1\\ntime <timestamp>\\n" || checkpoint body``. The message does not commit to
the cosigner's name, so one public key MUST NOT be used under two names: a quorum counts
distinct public keys, never names or lines. Pure: no clock, network or database.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from carewall.errors import InputError
from carewall.ledger.note import ALG_COSIGNATURE_V1, Signature, Signer, key_id, parse_note
from carewall.types import KeyID

__all__ = [
    "Cosigner",
    "WitnessKey",
    "cosignature_message",
    "cosigned_by",
    "merge_cosignatures",
    "parse_witness_vkey",
]

_MAX_TIMESTAMP = 2**63 - 1


def cosignature_message(timestamp: int, body: str) -> bytes:
    """The bytes a cosignature/v1 signature covers."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


@dataclass(frozen=True)
class WitnessKey:
    """A witness: its name and 32-byte Ed25519 cosigner public key."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> KeyID:
        return key_id(self.name, bytes([ALG_COSIGNATURE_V1]) + self.public_key)

    def vkey(self) -> str:
        b64 = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{b64}"

    def verify(self, body: str, sig: Signature) -> int | None:
        """The cosignature's timestamp if ``sig`` is this witness's valid cosignature on
        ``body``; None for another key's line or a bad signature (never raises)."""
        if sig.name != self.name or sig.key_id != self.key_id or len(sig.sig) != 72:
            return None
        (ts,) = struct.unpack(">Q", sig.sig[:8])
        if ts == 0 or ts > _MAX_TIMESTAMP:
            return None
        pub = ed25519.Ed25519PublicKey.from_public_bytes(self.public_key)
        try:
            pub.verify(sig.sig[8:], cosignature_message(ts, body))
        except InvalidSignature:
            return None
        return int(ts)


def parse_witness_vkey(vkey: str, field: str = "--witness") -> WitnessKey:
    """Parse ``name+hex8+base64(0x04 || key)``; InputError naming ``field`` otherwise."""
    fix = "give the witness's cosignature/v1 verifier key, name+hex8+base64 (type 0x04)"
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise InputError("the witness key is malformed", field=field, fix=fix)
    name, hex8, b64 = parts
    if not name or any(c.isspace() for c in name):
        raise InputError("the witness key's name is malformed", field=field, fix=fix)
    try:
        raw = base64.b64decode(b64.encode("ascii"), validate=True)
        want = bytes.fromhex(hex8) if len(hex8) == 8 else b""
    except (binascii.Error, ValueError, UnicodeEncodeError) as e:
        raise InputError("the witness key is not valid base64/hex", field=field, fix=fix) from e
    if len(raw) != 33 or raw[0] != ALG_COSIGNATURE_V1:
        raise InputError(
            "the witness key is not an Ed25519 cosignature/v1 key (type 0x04)",
            field=field,
            fix=fix,
        )
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(raw[1:])
    except ValueError as e:
        raise InputError("the witness key holds no valid public key", field=field) from e
    key = WitnessKey(name, raw[1:])
    if key.key_id != want:
        raise InputError("the witness key's ID does not match its key", field=field, fix=fix)
    return key


class Cosigner:
    """A witness's signing side: an Ed25519 private key used for cosignature/v1 only."""

    def __init__(self, signer: Signer) -> None:
        # Keys are stored in the signed-note private-key format (as the log's are); the same
        # seed signs only cosignature/v1 messages here, under the 0x04 key ID.
        self._signer = signer
        self.name = signer.name
        seed = base64.b64decode(signer.skey().split("+", 4)[4])[1:]
        self._key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        self.key = WitnessKey(
            signer.name,
            self._key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            ),
        )

    def vkey(self) -> str:
        return self.key.vkey()

    def cosign(self, body: str, timestamp: int) -> Signature:
        """A cosignature/v1 signature line on the checkpoint ``body`` at ``timestamp``."""
        if not 0 < timestamp <= _MAX_TIMESTAMP:
            raise InputError("a cosignature timestamp must be positive", field="timestamp")
        sig = self._key.sign(cosignature_message(timestamp, body))
        return Signature(self.name, bytes(self.key.key_id), struct.pack(">Q", timestamp) + sig)


def cosigned_by(note: str, witnesses: Sequence[WitnessKey]) -> dict[bytes, str]:
    """Which of ``witnesses`` validly cosigned ``note``: public key -> name.

    Keyed by public key, so one witness listed (or signing) under two names, or one line
    repeated, counts once. Lines from unknown keys and bad signatures count for nothing.
    """
    parsed = parse_note(note)
    out: dict[bytes, str] = {}
    for sig in parsed.signatures:
        for w in witnesses:
            if w.public_key not in out and w.verify(parsed.text, sig) is not None:
                out[w.public_key] = w.name
    return out


def merge_cosignatures(note: str, lines: Sequence[str]) -> str:
    """``note`` with the signature ``lines`` appended (each ``— name base64\\n``), skipping
    any line the note already carries."""
    have = set(note.splitlines(keepends=True))
    extra = [ln if ln.endswith("\n") else ln + "\n" for ln in lines]
    return note + "".join(ln for ln in dict.fromkeys(extra) if ln not in have)
