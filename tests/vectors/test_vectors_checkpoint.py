"""Checkpoint vectors: transparency-dev/formats marshal/unmarshal, the real sum.golang.org
tree head, the x/mod golden tree note and real witness cosignatures on Rekor v2 staging."""

from __future__ import annotations

import json
from typing import Any

import pytest
from vectorlib import load, require

from carewall.errors import VerificationError
from carewall.ledger.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint
from carewall.ledger.merkle import hash_leaf
from carewall.ledger.note import ALG_COSIGNATURE_V1, Verifier, open_note, parse_note
from carewall.types import RootHash

CHECKPOINT = require("checkpoint")
FORMATS = load(require("note") / "transparency-dev-formats.json")
SUMDB = load(CHECKPOINT / "sum-golang-org-real.json")
WITNESSES = load(CHECKPOINT / "witness-cosignatures-rekor-v2-staging.json")


@pytest.mark.parametrize("case", FORMATS["checkpoint_marshal"], ids=lambda c: c["origin"])
def test_formats_marshal(case: dict[str, Any]) -> None:
    cp = Checkpoint(case["origin"], case["size"], RootHash(case["hash_utf8"].encode()))
    assert cp.to_text() == case["want"]


# transparency-dev/formats accepts any text after the root; C2SP tlog-checkpoint makes that
# text extension lines, which MUST be non-empty, so the blank-lines case is refused here.
C2SP_STRICTER = {"valid with trailing newlines"}


@pytest.mark.parametrize(
    "case", FORMATS["checkpoint_unmarshal"], ids=lambda c: c["desc"].replace(" ", "-")
)
def test_formats_unmarshal(case: dict[str, Any]) -> None:
    if case["wantErr"] or case["desc"] in C2SP_STRICTER:
        with pytest.raises(VerificationError, match="checkpoint"):
            parse_checkpoint(case["m"], hash_size=None)
        return
    cp = parse_checkpoint(case["m"], hash_size=None)
    want = case["want"]
    assert (cp.origin, cp.size, cp.root) == (
        want["origin"],
        want["size"],
        want["hash_utf8"].encode(),
    )
    assert "".join(f"{e}\n" for e in cp.extensions) == case.get("wantRest", "")
    # and the default (carewall) parser insists on a 32-byte SHA-256 root
    with pytest.raises(VerificationError, match="exactly 32 bytes"):
        parse_checkpoint(case["m"])


def test_sum_golang_org_real_checkpoint_verifies() -> None:
    v = Verifier.from_vkey(SUMDB["vkey"])
    # The key name is not the origin ("go.sum database tree"), so open it as a plain note.
    note = open_note(SUMDB["note_with_final_newline"], [v])
    cp = parse_checkpoint(note.text)
    assert (cp.origin, cp.size) == ("go.sum database tree", 31700353)
    with pytest.raises(VerificationError, match="malformed"):
        open_note(SUMDB["note_as_in_source"], [v])  # no final newline
    with pytest.raises(VerificationError, match="no verifiable signatures"):
        open_checkpoint(SUMDB["note_with_final_newline"], [v])  # key name != origin


def test_xmod_golden_tree_note_is_a_checkpoint_of_a_leaf_hash() -> None:
    tn = load(require("tiles") / "golang-x-mod-tlog.json")["tree_note"]
    cp = parse_checkpoint(tn["golden"])
    assert cp.size == tn["N"]
    assert bytes(cp.root) == bytes(hash_leaf(tn["record_utf8"].encode()))
    assert cp.to_text() == tn["golden"]


def _rekor_v2_staging_checkpoint() -> str:
    bundle = json.loads(
        (
            require("sigstore") / "sigstore-python" / "a.dsse.staging-rekor-v2.txt.sigstore.json"
        ).read_text(encoding="utf-8")
    )
    envelope: str = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"][
        "checkpoint"
    ]["envelope"]
    return envelope


@pytest.mark.parametrize("witness", sorted(WITNESSES["witness_vkeys"]))
def test_real_witness_cosignature_verifies(witness: str) -> None:
    v = Verifier.from_vkey(WITNESSES["witness_vkeys"][witness]["vkey"])
    assert v.alg == ALG_COSIGNATURE_V1
    note = open_note(_rekor_v2_staging_checkpoint(), [v])
    assert [s.name for s in note.verified] == [witness]


def test_witness_cosignature_fails_on_altered_checkpoint() -> None:
    vkeys = [Verifier.from_vkey(w["vkey"]) for w in WITNESSES["witness_vkeys"].values()]
    altered = _rekor_v2_staging_checkpoint().replace("\n4026479\n", "\n4026480\n")
    with pytest.raises(VerificationError, match="invalid signature"):
        open_note(altered, vkeys)


def test_rekor_v2_staging_log_key_opens_the_cosigned_checkpoint() -> None:
    log = Verifier.from_vkey(WITNESSES["log_vkey_cross_check"]["vkey"])
    cp = open_checkpoint(_rekor_v2_staging_checkpoint(), [log])
    assert (cp.origin, cp.size) == ("log2025-alpha3.rekor.sigstage.dev", 4026479)
    # witness keys are never accepted as the log's own signature
    witness = Verifier.from_vkey(WITNESSES["witness_vkeys"]["witness.stagemole.eu"]["vkey"])
    with pytest.raises(VerificationError):
        open_checkpoint(_rekor_v2_staging_checkpoint(), [witness])
    assert len(parse_note(_rekor_v2_staging_checkpoint()).signatures) == 4
