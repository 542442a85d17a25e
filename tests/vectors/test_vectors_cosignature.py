"""cosignature/v1 and tlog-witness against outside material: real witnesses' cosignatures on
a Rekor v2 staging checkpoint, the C2SP spec's own examples, and an outside implementation
(the ``tlog-scales`` package from PyPI) verifying cosignatures carewall makes."""

from __future__ import annotations

import time

import pytest
from vectorlib import load, require

from carewall.ledger.checkpoint import Checkpoint, sign_checkpoint
from carewall.ledger.note import Signer, parse_note
from carewall.witness.cosignature import (
    Cosigner,
    cosignature_message,
    cosigned_by,
    parse_witness_vkey,
)
from carewall.witness.protocol import format_add_checkpoint, parse_add_checkpoint

NOTE = require("note")
C2SP = load(NOTE / "c2sp-examples.json")
WITNESSES = load(require("checkpoint") / "witness-cosignatures-rekor-v2-staging.json")
REKOR = load(require("sigstore") / "sigstore-python" / "a.dsse.staging-rekor-v2.txt.sigstore.json")


def _rekor_note() -> str:
    for entry in REKOR["verificationMaterial"]["tlogEntries"]:
        return str(entry["inclusionProof"]["checkpoint"]["envelope"])
    raise AssertionError("no checkpoint in the bundle")


def test_real_witness_cosignatures_verify() -> None:
    keys = [parse_witness_vkey(w["vkey"]) for w in WITNESSES["witness_vkeys"].values()]
    signed = cosigned_by(_rekor_note(), keys)
    assert sorted(signed.values()) == sorted(WITNESSES["witness_vkeys"])


def test_real_cosignature_on_an_altered_checkpoint_does_not_count() -> None:
    keys = [parse_witness_vkey(w["vkey"]) for w in WITNESSES["witness_vkeys"].values()]
    altered = _rekor_note().replace("\n4026479\n", "\n4026480\n")
    assert cosigned_by(altered, keys) == {}


def test_spec_signed_message_example() -> None:
    note = parse_note(C2SP["cosigned_checkpoint_example"]["note"])
    ts = int.from_bytes(note.signatures[1].sig[:8], "big")
    assert (
        cosignature_message(ts, note.text).decode()
        == (C2SP["cosignature_v1_signed_message_example"])
    )


def test_spec_add_checkpoint_example_round_trips() -> None:
    body = C2SP["witness_add_checkpoint_request_example"]
    req = parse_add_checkpoint(body.encode())
    assert req.old_size == 20852014
    assert len(req.proof) == 4
    assert format_add_checkpoint(req.old_size, req.proof, req.note).decode() == body


def test_tlog_scales_verifies_carewall_cosignatures() -> None:
    signing = pytest.importorskip("tlog_scales.signing")
    tlog = pytest.importorskip("tlog_scales.tlog")
    log = Signer.generate("carewall.test/log")
    witness = Cosigner(Signer.generate("witness.test/w1"))
    note = sign_checkpoint(Checkpoint("carewall.test/log", 7, bytes(range(32))), log)  # type: ignore[arg-type]
    text = parse_note(note).text
    cosigned = note + witness.cosign(text, int(time.time())).line()
    cp = tlog.Checkpoint.from_text(cosigned)
    vkey = signing.Vkey.from_string(witness.vkey())
    assert vkey.key_id == int.from_bytes(witness.key.key_id, "big")  # same key ID rule
    cp.verify(vkey)  # raises on a bad cosignature
    cp.verify(signing.Vkey.from_string(log.vkey()))  # the log's own line still verifies
    valid = signing.VkeySet(vkey).verify(cp.signatures, cp)
    assert len(valid) == 1


def test_tlog_scales_rejects_a_cosignature_on_another_tree() -> None:
    signing = pytest.importorskip("tlog_scales.signing")
    tlog = pytest.importorskip("tlog_scales.tlog")
    log = Signer.generate("carewall.test/log")
    witness = Cosigner(Signer.generate("witness.test/w1"))
    note = sign_checkpoint(Checkpoint("carewall.test/log", 7, bytes(range(32))), log)  # type: ignore[arg-type]
    other = parse_note(note).text.replace("\n7\n", "\n8\n")
    forged = note + witness.cosign(other, int(time.time())).line()
    cp = tlog.Checkpoint.from_text(forged)
    assert (
        signing.VkeySet(signing.Vkey.from_string(witness.vkey())).verify(cp.signatures, cp) == set()
    )
