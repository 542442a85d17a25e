"""RFC 6962/9162 vectors from transparency-dev/merkle: every probe, the reference tree, and
proofs we generate compared byte-for-byte with the published happy paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from vectorlib import b64, load, require

from carewall.errors import CarewallError, VerificationError
from carewall.ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    NodeRef,
    consistency_proof,
    hash_children,
    hash_leaf,
    inclusion_proof,
    root_at,
    root_of,
    verify_consistency,
    verify_inclusion,
)

MERKLE = require("merkle")
TESTDATA = MERKLE / "transparency-dev-merkle" / "testdata"

# The one probe where a strict verifier differs (vectors README): 12-byte "roots" with equal
# sizes. carewall requires 32-byte hashes everywhere (fail closed), so it rejects this probe.
STRICT_DEVIATIONS = {"consistency/additional/sizes-are-equal-one-and-proof-is-empty"}


def _cases(kind: str) -> list[Any]:
    files = sorted((TESTDATA / kind).rglob("*.json"))
    return [pytest.param(f, id=str(f.relative_to(TESTDATA).with_suffix(""))) for f in files]


INCLUSION = _cases("inclusion")
CONSISTENCY = _cases("consistency")


def test_probe_counts() -> None:
    assert len(INCLUSION) == 98
    assert len(CONSISTENCY) == 98


def _proof(v: dict[str, Any]) -> list[bytes]:
    return [b64(h) for h in v["proof"] or []]


@pytest.mark.parametrize("path", INCLUSION)
def test_inclusion_probe(path: Path) -> None:
    v = load(path)
    args = (v["leafIdx"], v["treeSize"], b64(v["leafHash"]), _proof(v), b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(VerificationError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", CONSISTENCY)
def test_consistency_probe(path: Path) -> None:
    v = load(path)
    args = (v["size1"], v["size2"], b64(v["root1"]), b64(v["root2"]), _proof(v))
    name = str(path.relative_to(TESTDATA).with_suffix(""))
    if v["wantErr"] or name in STRICT_DEVIATIONS:
        with pytest.raises(VerificationError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_strict_deviation_is_the_length_check() -> None:
    v = load(TESTDATA / "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json")
    assert v["wantErr"] is False
    with pytest.raises(VerificationError, match="must be exactly 32 bytes"):
        verify_consistency(1, 1, b64(v["root1"]), b64(v["root2"]), [])


REF = load(MERKLE / "rfc6962-reference-tree.json")
LEAVES = [hash_leaf(bytes.fromhex(x)) for x in REF["leaf_inputs_hex"]]


def _stored_nodes() -> dict[NodeRef, bytes]:
    cr = CompactRange()
    return dict(cr.extend(LEAVES))


def test_reference_hasher() -> None:
    empty, leaf_empty, leaf_l, node = REF["hasher_vectors"]
    assert EMPTY_ROOT.hex() == empty["want_hex"]
    assert hash_leaf(b"").hex() == leaf_empty["want_hex"]
    assert hash_leaf(leaf_l["leaf_utf8"].encode()).hex() == leaf_l["want_hex"]
    got = hash_children(node["left_utf8"].encode(), node["right_utf8"].encode())
    assert got.hex() == node["want_hex"]


def test_reference_node_hashes() -> None:
    nodes = _stored_nodes()
    want = {
        (level, i): h
        for level, row in enumerate(REF["node_hashes_by_level_hex"])
        for i, h in enumerate(row)
    }
    assert {ref: h.hex() for ref, h in nodes.items()} == want


@pytest.mark.parametrize("size", range(9))
def test_reference_roots(size: int) -> None:
    want = REF["root_hashes_by_size_hex"][str(size)]
    nodes = _stored_nodes()
    assert root_of(LEAVES[:size]).hex() == want
    assert root_at(size, lambda refs: {r: nodes[r] for r in refs}).hex() == want
    cr = CompactRange()
    cr.extend(LEAVES[:size], collect=False)
    assert cr.root().hex() == want


def _happy(kind: str) -> list[Any]:
    return [p for p in _cases(kind) if p.values[0].name == "happy-path.json"]


@pytest.mark.parametrize("path", _happy("inclusion"))
def test_generated_inclusion_proof_matches_published(path: Path) -> None:
    v = load(path)
    nodes = _stored_nodes()
    got = inclusion_proof(v["leafIdx"], v["treeSize"], lambda refs: {r: nodes[r] for r in refs})
    assert got == _proof(v)
    assert LEAVES[v["leafIdx"]] == b64(v["leafHash"])


@pytest.mark.parametrize("path", _happy("consistency"))
def test_generated_consistency_proof_matches_published(path: Path) -> None:
    v = load(path)
    nodes = _stored_nodes()
    got = consistency_proof(v["size1"], v["size2"], lambda refs: {r: nodes[r] for r in refs})
    assert got == _proof(v)


def test_a_wrong_probe_is_caught_as_carewall_error() -> None:
    # Guards the parametrised tests above: a failing probe must raise, not return False.
    with pytest.raises(CarewallError):
        verify_inclusion(0, 1, LEAVES[0], [], LEAVES[1])
