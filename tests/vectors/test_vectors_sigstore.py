"""Real Sigstore Rekor entries: leaf hash, RFC 9162 inclusion, signed checkpoint (Rekor v1
ECDSA, Rekor v2 Ed25519) and checkpoint == proof; plus the conformance cases' tlog outcome."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from cryptography.hazmat.primitives import serialization
from vectorlib import b64, load, require

from carewall.errors import CarewallError, VerificationError
from carewall.ledger.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint
from carewall.ledger.merkle import hash_leaf, verify_inclusion
from carewall.ledger.note import Verifier, key_id, open_note

SIGSTORE = require("sigstore")
PYTHON_BUNDLES = sorted((SIGSTORE / "sigstore-python").iterdir())
CONFORMANCE = SIGSTORE / "conformance"
EXPECTED: dict[str, bool] = load(CONFORMANCE / "expected-tlog-outcome.json")["cases"]


def _tlogs(*roots: Path) -> list[dict[str, Any]]:
    return [t for r in roots for t in load(r)["tlogs"]]


def _log_checkpoint(tlog: dict[str, Any], envelope: str) -> Checkpoint:
    """Open a Rekor checkpoint with the trusted log key; the key name is the log's host."""
    name = urlparse(tlog["baseUrl"]).hostname or ""
    spki = b64(tlog["publicKey"]["rawBytes"])
    if tlog["publicKey"]["keyDetails"] == "PKIX_ED25519":
        pub = serialization.load_der_public_key(spki).public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        v = Verifier.ed25519(name, pub)
        # Rekor v2: the log ID is the whole C2SP key hash, the origin is the host name.
        assert hashlib.sha256(name.encode() + b"\n\x01" + pub).digest() == b64(
            tlog["logId"]["keyId"]
        )
        assert v.key_id == key_id(name, b"\x01" + pub)
        return open_checkpoint(envelope, [v])
    # Rekor v1: ECDSA, origin "<host> - <tree id>", signature named after the host.
    v = Verifier.ecdsa(name, spki)
    return parse_checkpoint(open_note(envelope, [v]).text)


def check_tlog_entry(bundle: dict[str, Any], tlogs: list[dict[str, Any]]) -> Checkpoint:
    """Checks 1-4 of the vectors README; raises CarewallError on any failure."""
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    proof = entry.get("inclusionProof")
    if not proof:
        raise VerificationError("entry has no inclusion proof")
    leaf = hash_leaf(b64(entry["canonicalizedBody"]))
    index, size = int(proof["logIndex"]), int(proof["treeSize"])
    root = b64(proof["rootHash"])
    verify_inclusion(index, size, leaf, [b64(h) for h in proof["hashes"]], root)
    envelope = (proof.get("checkpoint") or {}).get("envelope")
    if not envelope:
        raise VerificationError("entry has no checkpoint")
    tlog = next((t for t in tlogs if t["logId"]["keyId"] == entry["logId"]["keyId"]), None)
    if tlog is None:
        raise VerificationError("entry's log is not in the trusted root")
    cp = _log_checkpoint(tlog, envelope)
    if (cp.size, cp.root) != (size, root):
        raise VerificationError("checkpoint does not commit to the proof's tree")
    return cp


@pytest.mark.parametrize("path", PYTHON_BUNDLES, ids=lambda p: p.name)
def test_sigstore_python_bundle(path: Path) -> None:
    tlogs = _tlogs(
        SIGSTORE / "trusted_root.production.json", SIGSTORE / "trusted_root.staging.json"
    )
    cp = check_tlog_entry(load(path), tlogs)
    assert cp.size > 0


def test_conformance_cases_all_present() -> None:
    assert sorted(p.name for p in CONFORMANCE.iterdir() if p.is_dir()) == sorted(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED), ids=str)
def test_conformance_tlog_outcome(case: str) -> None:
    root = CONFORMANCE / case / "trusted_root.json"
    tlogs = _tlogs(root if root.exists() else SIGSTORE / "trusted_root.production.json")
    bundle = load(CONFORMANCE / case / "bundle.sigstore.json")
    if EXPECTED[case]:
        check_tlog_entry(bundle, tlogs)
    else:
        with pytest.raises(CarewallError):
            check_tlog_entry(bundle, tlogs)


def test_flipping_one_body_byte_breaks_inclusion() -> None:
    bundle = load(SIGSTORE / "sigstore-python" / "staging-rekor-v2.txt.sigstore.json")
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    body = bytearray(b64(entry["canonicalizedBody"]))
    body[0] ^= 1
    import base64

    entry["canonicalizedBody"] = base64.b64encode(bytes(body)).decode()
    with pytest.raises(VerificationError, match="root"):
        check_tlog_entry(bundle, _tlogs(SIGSTORE / "trusted_root.staging.json"))
