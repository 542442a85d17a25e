"""A request's subjects as one RFC 9162 Merkle tree, so a ``request`` entry stays small.

A request about 100,000 people cannot list 100,000 commitments in one log entry (a C2SP
entry bundle carries at most 65,535 bytes an entry). The entry carries the root of a tree
whose leaves are the subjects' commitments, in request order; each person's notice carries
their commitment's inclusion path, which they (or anyone) check against the logged root.

Leaf i is ``SHA-256(0x00 ‖ commitment_i)`` with the commitment's 32 raw bytes (RFC 9162
§2.1.1), so the ordinary verifier :func:`carewall.ledger.merkle.verify_inclusion` applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from carewall.ledger.merkle import (
    CompactRange,
    NodeRef,
    hash_leaf,
    inclusion_proof,
    verify_inclusion,
)

__all__ = ["SubjectTree", "subjects_root", "verify_subject"]


def _leaves(commitments: Sequence[str]) -> list[bytes]:
    return [hash_leaf(bytes.fromhex(c)) for c in commitments]


def subjects_root(commitments: Sequence[str]) -> str:
    """The hex root over ``commitments`` (hex HMACs), in request order."""
    if len(commitments) == 1:  # one subject: a one-leaf tree's root is its leaf's hash
        return hash_leaf(bytes.fromhex(commitments[0])).hex()
    return CompactRange().extend_root(_leaves(commitments)).hex()


class SubjectTree:
    """Every node of one request's subjects tree, built once for many proofs."""

    def __init__(self, commitments: Sequence[str]) -> None:
        self.size = len(commitments)
        self._nodes: dict[NodeRef, bytes] = dict(CompactRange().extend(_leaves(commitments)))

    def _get(self, refs: Sequence[NodeRef]) -> Mapping[NodeRef, bytes]:
        return {r: self._nodes[r] for r in refs if r in self._nodes}

    def proof(self, position: int) -> list[str]:
        """The inclusion path (hex, leaf to root) of the subject at ``position``."""
        return [h.hex() for h in inclusion_proof(position, self.size, self._get)]


def verify_subject(
    commitment: str, position: int, count: int, path: Sequence[str], root: str
) -> None:
    """Raise VerificationError unless ``path`` links ``commitment`` to ``root``."""
    verify_inclusion(
        position,
        count,
        hash_leaf(bytes.fromhex(commitment)),
        [bytes.fromhex(p) for p in path],
        bytes.fromhex(root),
    )
