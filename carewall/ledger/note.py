"""C2SP signed notes: Ed25519 signing, and verification of the key types logs use in practice.

Spec: https://c2sp.org/signed-note (Go reference: golang.org/x/mod/sumdb/note).
Other signature types verified here: ECDSA P-256 (0x02, Sigstore Rekor v1 checkpoints),
cosignature/v1 (0x04, https://c2sp.org/tlog-cosignature) and RFC 6962 tree-head signatures
(0x05, https://c2sp.org/static-ct-api). Signatures from keys the caller does not know are
parsed and ignored; a known key whose signature does not verify is an error (fail closed).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from carewall.errors import InputError, VerificationError
from carewall.types import KeyID

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ECDSA",
    "ALG_ED25519",
    "ALG_RFC6962",
    "MAX_SIGNATURES",
    "Note",
    "Signature",
    "Signer",
    "Verifier",
    "cosignature_timestamp",
    "key_id",
    "open_note",
    "parse_note",
    "sign_note",
]

ALG_ED25519 = 0x01
ALG_ECDSA = 0x02
ALG_COSIGNATURE_V1 = 0x04
ALG_RFC6962 = 0x05
MAX_SIGNATURES = 100
_SIG_PREFIX = "— "  # em dash + space


def key_id(name: str, alg_and_key: bytes) -> KeyID:
    """SHA-256(name || 0x0A || alg || key)[:4], the C2SP key ID."""
    return KeyID(hashlib.sha256(name.encode() + b"\n" + alg_and_key).digest()[:4])


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _b64(data: str, what: str) -> bytes:
    try:
        return base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as e:
        raise InputError(f"{what} is not valid base64", field=what) from e


def _split_key(text: str, what: str, parts: int) -> list[str]:
    # base64 may itself contain '+', so only the first separators split
    fields = text.split("+", parts - 1)
    if len(fields) != parts:
        raise InputError(
            f"{what} is malformed",
            field=what,
            fix="expected name+hex8+base64"
            if parts == 3
            else "expected PRIVATE+KEY+name+hex8+base64",
        )
    return fields


def _check_hex8(hex8: str, what: str) -> bytes:
    if len(hex8) != 8 or any(c not in "0123456789abcdefABCDEF" for c in hex8):
        raise InputError(f"{what} key ID must be 8 hex digits", field=what)
    return bytes.fromhex(hex8)


class Signer:
    """An Ed25519 note signer (type 0x01)."""

    def __init__(self, name: str, private_key: ed25519.Ed25519PrivateKey) -> None:
        if not _valid_name(name):
            raise InputError(
                "key name must be non-empty, without spaces or '+'",
                field="name",
                fix="e.g. example.org/log",
            )
        self.name = name
        self._key = private_key
        self._pub = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id: KeyID = key_id(name, bytes([ALG_ED25519]) + self._pub)

    @classmethod
    def generate(cls, name: str) -> Signer:
        return cls(name, ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        """Parse Go's ``PRIVATE+KEY+name+hex8+base64(0x01 || seed)``."""
        fields = _split_key(skey.strip(), "skey", 5)
        if fields[0] != "PRIVATE" or fields[1] != "KEY":
            raise InputError("skey must start with PRIVATE+KEY+", field="skey")
        name, hex8, b64 = fields[2], fields[3], fields[4]
        want = _check_hex8(hex8, "skey")
        raw = _b64(b64, "skey")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise InputError("skey must hold an Ed25519 seed (type 0x01, 32 bytes)", field="skey")
        signer = cls(name, ed25519.Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.key_id != want:
            raise InputError("skey key ID does not match its key", field="skey")
        return signer

    def skey(self) -> str:
        seed = self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        b64 = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{b64}"

    def vkey(self) -> str:
        b64 = base64.b64encode(bytes([ALG_ED25519]) + self._pub).decode()
        return f"{self.name}+{self.key_id.hex()}+{b64}"

    def verifier(self) -> Verifier:
        return Verifier.ed25519(self.name, self._pub)

    def sign(self, text: str) -> bytes:
        """The raw 64-byte Ed25519 signature over the note text."""
        return self._key.sign(text.encode())


class Verifier:
    """A note verifier for one (name, key ID); ``verify`` never raises on a bad signature."""

    def __init__(
        self, name: str, key_id: bytes, alg: int, check: Callable[[bytes, bytes], bool]
    ) -> None:
        self.name = name
        self.key_id = KeyID(bytes(key_id))
        self.alg = alg
        self._check = check

    @classmethod
    def ed25519(cls, name: str, public_key: bytes, *, alg: int = ALG_ED25519) -> Verifier:
        """An Ed25519 log key (0x01) or witness cosignature/v1 key (0x04) from 32 raw bytes."""
        if alg not in (ALG_ED25519, ALG_COSIGNATURE_V1) or len(public_key) != 32:
            raise InputError("Ed25519 public key must be 32 bytes", field="vkey")
        if not _valid_name(name):
            raise InputError("key name must be non-empty, without spaces or '+'", field="vkey")
        pub = ed25519.Ed25519PublicKey.from_public_bytes(public_key)

        def check_ed(text: bytes, sig: bytes) -> bool:
            try:
                pub.verify(sig, text)
            except InvalidSignature:
                return False
            return True

        def check_cosig(text: bytes, sig: bytes) -> bool:
            if len(sig) != 72:
                return False
            ts = struct.unpack(">Q", sig[:8])[0]
            return check_ed(b"cosignature/v1\ntime %d\n" % ts + text, sig[8:])

        check = check_ed if alg == ALG_ED25519 else check_cosig
        return cls(name, key_id(name, bytes([alg]) + public_key), alg, check)

    @classmethod
    def ecdsa(cls, name: str, spki_der: bytes) -> Verifier:
        """An ECDSA P-256 key (0x02): key ID = SHA-256(SPKI)[:4], signature = DER over SHA-256."""
        if not _valid_name(name):
            raise InputError("key name must be non-empty, without spaces or '+'", field="vkey")
        pub = _ec_key(spki_der)

        def check(text: bytes, sig: bytes) -> bool:
            try:
                pub.verify(sig, text, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                return False
            return True

        return cls(name, hashlib.sha256(spki_der).digest()[:4], ALG_ECDSA, check)

    @classmethod
    def rfc6962(cls, name: str, spki_der: bytes) -> Verifier:
        """A static-ct-api key (0x05): the note must be a checkpoint whose origin is ``name``."""
        if not _valid_name(name):
            raise InputError("key name must be non-empty, without spaces or '+'", field="vkey")
        pub = _ec_key(spki_der)

        def check(text: bytes, sig: bytes) -> bool:
            # timestamp(8) || hash alg 4 (sha256) || sig alg 3 (ecdsa) || u16 len || DER
            if len(sig) < 12 or sig[8:10] != b"\x04\x03":
                return False
            (ts,) = struct.unpack(">Q", sig[:8])
            (n,) = struct.unpack(">H", sig[10:12])
            if len(sig) != 12 + n:
                return False
            lines = text.split(b"\n")
            if len(lines) != 4 or lines[3] != b"" or lines[0] != name.encode():
                return False  # extension lines are not covered by an RFC 6962 signature
            try:
                size = int(lines[1])
                root = base64.b64decode(lines[2], validate=True)
            except (ValueError, binascii.Error):
                return False
            if len(root) != 32:
                return False
            tbs = b"\x00\x01" + struct.pack(">QQ", ts, size) + root
            try:
                pub.verify(sig[12:], tbs, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                return False
            return True

        # Key ID over the RFC 6962 log ID (SHA-256 of the SPKI), as static-ct-api logs use.
        log_id = hashlib.sha256(spki_der).digest()
        return cls(name, key_id(name, bytes([ALG_RFC6962]) + log_id), ALG_RFC6962, check)

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """Parse ``name+hex8+base64(alg || key)``; InputError on anything malformed or unknown."""
        name, hex8, b64 = _split_key(vkey.strip(), "vkey", 3)
        if not _valid_name(name):
            raise InputError("vkey name must be non-empty, without spaces or '+'", field="vkey")
        want = _check_hex8(hex8, "vkey")
        raw = _b64(b64, "vkey")
        if not raw:
            raise InputError("vkey has no key material", field="vkey")
        alg, key = raw[0], raw[1:]
        try:
            if alg in (ALG_ED25519, ALG_COSIGNATURE_V1):
                v = cls.ed25519(name, key, alg=alg)
            elif alg == ALG_ECDSA:
                v = cls.ecdsa(name, key)
            elif alg == ALG_RFC6962:
                v = cls.rfc6962(name, key)
            else:
                raise InputError(
                    f"vkey type 0x{alg:02x} is not supported",
                    field="vkey",
                    fix="use an Ed25519 (0x01) key",
                )
        except ValueError as e:
            raise InputError("vkey holds an invalid public key", field="vkey") from e
        if v.key_id != want:
            raise InputError("vkey key ID does not match its key", field="vkey")
        return v

    def verify(self, text: str, sig: bytes) -> bool:
        """Check ``sig`` (without the 4-byte key ID) over the note text."""
        try:
            return self._check(text.encode(), sig)
        except ValueError:
            return False


def _ec_key(spki_der: bytes) -> ec.EllipticCurvePublicKey:
    try:
        pub = serialization.load_der_public_key(spki_der)
    except ValueError as e:
        raise InputError("vkey holds an invalid public key", field="vkey") from e
    if not isinstance(pub, ec.EllipticCurvePublicKey) or not isinstance(pub.curve, ec.SECP256R1):
        raise InputError("ECDSA vkey must be a P-256 key", field="vkey")
    return pub


def cosignature_timestamp(sig: bytes) -> int:
    """The UNIX time a cosignature/v1 signature (after its key ID) claims."""
    if len(sig) != 72:
        raise VerificationError("cosignature/v1 signature must be 72 bytes", field="signature")
    return int(struct.unpack(">Q", sig[:8])[0])


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    sig: bytes

    def line(self) -> str:
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(self.key_id + self.sig).decode()}\n"


@dataclass(frozen=True)
class Note:
    text: str
    signatures: list[Signature] = field(default_factory=list)
    verified: list[Signature] = field(default_factory=list)


def _malformed(why: str) -> VerificationError:
    return VerificationError(f"malformed note: {why}", field="note")


def _check_text(text: str) -> None:
    for c in text:
        if c < " " and c != "\n":
            raise _malformed("control character in the text")
        if "\ud800" <= c <= "\udfff":
            raise _malformed("invalid UTF-8")


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """Sign ``text`` (which MUST end in a newline) and return the signed note."""
    if not text.endswith("\n"):
        raise InputError("note text must end with a newline", field="text")
    if not signers:
        raise InputError("at least one signer is needed", field="signers")
    _check_text(text)
    lines = [Signature(s.name, s.key_id, s.sign(text)).line() for s in signers]
    return text + "\n" + "".join(lines)


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into text and signatures, checking syntax only."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _malformed("invalid UTF-8") from e
    _check_text(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise _malformed("no blank line before the signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block or not block.endswith("\n"):
        raise _malformed("no signature lines, or no final newline")
    sigs: list[Signature] = []
    for line in block[:-1].split("\n"):
        if not line.startswith(_SIG_PREFIX):
            raise _malformed("a line in the signature block is not a signature")
        name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not sep or not _valid_name(name) or not b64:
            raise _malformed("bad signature line")
        try:
            raw = base64.b64decode(b64.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError) as e:
            raise _malformed("signature is not valid base64") from e
        if len(raw) < 5:
            raise _malformed("signature too short")
        if len(sigs) >= MAX_SIGNATURES:
            raise _malformed(f"more than {MAX_SIGNATURES} signatures")
        sigs.append(Signature(name, raw[:4], raw[4:]))
    return Note(text=text, signatures=sigs, verified=[])


def open_note(note: str | bytes, verifiers: Sequence[Verifier]) -> Note:
    """Parse and verify: at least one signature by a known verifier MUST check out.

    Unknown keys are ignored; a known key with a bad signature raises VerificationError.
    """
    parsed = parse_note(note)
    known: dict[tuple[str, bytes], Verifier] = {}
    for known_v in verifiers:
        known.setdefault((known_v.name, bytes(known_v.key_id)), known_v)
    verified: list[Signature] = []
    seen: set[tuple[str, bytes]] = set()
    for sig in parsed.signatures:
        k = (sig.name, sig.key_id)
        v = known.get(k)
        if v is None or k in seen:
            continue
        if not v.verify(parsed.text, sig.sig):
            raise VerificationError(
                f"invalid signature for key {sig.name}+{sig.key_id.hex()}",
                field="note",
                fix="the note was altered or signed by a different key",
            )
        seen.add(k)
        verified.append(sig)
    if not verified:
        raise VerificationError(
            "note has no verifiable signatures",
            field="note",
            fix="check that the verifier key (name+hex8+base64) is the log's",
        )
    return Note(text=parsed.text, signatures=parsed.signatures, verified=verified)
