"""RFC 9162 Merkle tree hashing, proofs and verification (pure: no storage, no clock).

Spec: https://www.rfc-editor.org/rfc/rfc9162#section-2

Nodes are addressed as ``(level, index)`` of a *perfect* subtree covering leaves
``[index * 2**level, (index + 1) * 2**level)``. Storage keeps only perfect nodes; the hashes of
the imperfect subtrees on a tree's right edge are folded from perfect ones here, so proof
generation is integer work plus one batched fetch (``NodeGetter``).

Length policy: every hash that crosses this API (leaf hashes, roots, proof elements, stored
nodes) MUST be exactly 32 bytes, or the call fails. ``hash_children`` alone is the raw RFC
hasher and takes bytes of any length, as the RFC 6962 reference vectors require.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import cast

from carewall.errors import LedgerError, VerificationError
from carewall.types import HASH_SIZE, LeafHash, NodeHash, RootHash

__all__ = [
    "EMPTY_ROOT",
    "CompactRange",
    "NodeGetter",
    "NodeRef",
    "consistency_proof",
    "consistency_proof_refs",
    "hash_children",
    "hash_leaf",
    "inclusion_proof",
    "inclusion_proof_refs",
    "perfect_subtrees",
    "root_at",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

NodeRef = tuple[int, int]
NodeGetter = Callable[[Sequence[NodeRef]], Mapping[NodeRef, bytes]]

_sha256 = hashlib.sha256
EMPTY_ROOT: RootHash = RootHash(_sha256(b"").digest())
_LEAF = b"\x00"
_NODE = b"\x01"


def hash_leaf(data: bytes) -> LeafHash:
    """SHA-256(0x00 || data)."""
    return LeafHash(_sha256(_LEAF + data).digest())


def hash_children(left: bytes, right: bytes) -> NodeHash:
    """SHA-256(0x01 || left || right)."""
    return NodeHash(_sha256(_NODE + left + right).digest())


def _check_hash(value: bytes, what: str, error: type[LedgerError | VerificationError]) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise error(
            f"{what} must be exactly 32 bytes",
            field=what,
            fix="pass a raw SHA-256 digest (32 bytes), not hex or base64",
        )


def _check_size(index: int, size: int) -> None:
    if index < 0 or size < 0:
        raise LedgerError("tree sizes and indexes must be non-negative", fix="use 0 or more")
    if index >= size:
        raise LedgerError(
            "index must be smaller than the tree size",
            field="index",
            fix="ask for an index in [0, size)",
        )


def _fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its perfect decomposition (left to right, decreasing sizes)."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = _sha256(_NODE + h + acc).digest()
    return acc


def root_of(leaf_hashes: Sequence[bytes]) -> RootHash:
    """Reference MTH over leaf hashes (RFC 9162 §2.1.1), computed bottom-up."""
    if not leaf_hashes:
        return EMPTY_ROOT
    return CompactRange().extend_root(leaf_hashes)


def perfect_subtrees(begin: int, end: int) -> list[NodeRef]:
    """The fewest perfect subtrees that tile ``[begin, end)``, left to right.

    For ``begin == 0`` (and for every subtree the MTH recursion visits) this is exactly the
    RFC 9162 split: the largest power of two strictly below the size on the left, recursively.
    """
    if begin < 0 or end < begin:
        raise LedgerError("range must satisfy 0 <= begin <= end", fix="check the range bounds")
    out: list[NodeRef] = []
    while begin < end:
        align = (begin & -begin).bit_length() - 1 if begin else 64
        level = min(align, (end - begin).bit_length() - 1)
        out.append((level, begin >> level))
        begin += 1 << level
    return out


def _path_plan(
    level: int, index: int, size: int
) -> tuple[list[NodeRef], list[NodeRef], list[NodeRef]]:
    """The audit path of the perfect node ``(level, index)`` in a tree of ``size`` leaves.

    Returns ``(below, ephemeral, above)``: perfect siblings below the fork with the last leaf,
    the perfect decomposition of the (possibly truncated) sibling at the fork, and the left
    siblings above it. The proof is ``below + [MTH(ephemeral)] + above`` (bottom-up).
    """
    last = (size - 1) >> level
    inner = (index ^ last).bit_length()
    below: list[NodeRef] = []
    for j in range(inner - 1):
        below.append((level + j, (index >> j) ^ 1))
    ephemeral: list[NodeRef] = []
    if inner:
        j = inner - 1
        sib = (index >> j) ^ 1
        start = sib << (level + j)
        ephemeral = perfect_subtrees(start, min(start + (1 << (level + j)), size))
    above: list[NodeRef] = []
    i = index >> inner
    lvl = level + inner
    while i:
        if i & 1:
            above.append((lvl, i ^ 1))
        i >>= 1
        lvl += 1
    return below, ephemeral, above


def _missing(ref: NodeRef) -> LedgerError:
    return LedgerError(
        f"stored tree node {ref} is missing or not 32 bytes",
        fix="the node store is incomplete or damaged; run `carewall ledger verify`",
    )


def _fetch(get: NodeGetter, refs: Sequence[NodeRef]) -> Mapping[NodeRef, bytes]:
    got = get(refs)
    for ref in refs:
        h = got.get(ref)
        if h is None or len(h) != HASH_SIZE:
            raise _missing(ref)
    return got


def inclusion_proof_refs(index: int, size: int) -> list[NodeRef]:
    """Every perfect node needed to build the inclusion proof of leaf ``index``."""
    _check_size(index, size)
    below, eph, above = _path_plan(0, index, size)
    return below + eph + above


def _build(
    plan: tuple[list[NodeRef], list[NodeRef], list[NodeRef]], get: NodeGetter
) -> list[NodeHash]:
    below, eph, above = plan
    got = _fetch(get, below + eph + above)
    proof = [got[r] for r in below]
    if eph:
        proof.append(_fold([got[r] for r in eph]))
    proof += [got[r] for r in above]
    return cast(list[NodeHash], proof)


def inclusion_proof(index: int, size: int, get: NodeGetter) -> list[NodeHash]:
    """RFC 9162 §2.1.3.1 PATH(index, D[size]) from stored perfect nodes, in one ``get`` call."""
    _check_size(index, size)
    return _build(_path_plan(0, index, size), get)


def _consistency_plan(
    m: int, n: int
) -> tuple[NodeRef | None, tuple[list[NodeRef], list[NodeRef], list[NodeRef]]] | None:
    if m < 0 or n < 0 or m > n:
        raise LedgerError(
            "consistency needs 0 <= from <= size",
            field="from",
            fix="ask for a smaller 'from' than the tree size",
        )
    if m == 0 or m == n:
        return None
    # The biggest perfect subtree ending at m; the proof is its own hash (unless it is the
    # whole old tree, which the verifier already holds as root_m) plus its path in tree n.
    level = (m & -m).bit_length() - 1
    index = (m - 1) >> level
    node = (level, index) if index else None
    return node, _path_plan(level, index, n)


def consistency_proof_refs(m: int, n: int) -> list[NodeRef]:
    """Every perfect node needed for the consistency proof from size ``m`` to ``n``."""
    plan = _consistency_plan(m, n)
    if plan is None:
        return []
    node, (below, eph, above) = plan
    return ([node] if node else []) + below + eph + above


def consistency_proof(m: int, n: int, get: NodeGetter) -> list[NodeHash]:
    """RFC 9162 §2.1.4.1 PROOF(m, D[n]) from stored perfect nodes, in one ``get`` call.

    Empty when ``m == 0`` or ``m == n`` (nothing to prove).
    """
    plan = _consistency_plan(m, n)
    if plan is None:
        return []
    node, (below, eph, above) = plan
    refs = ([node] if node else []) + below + eph + above
    got = _fetch(get, refs)
    proof = [NodeHash(got[node])] if node else []
    return proof + _build((below, eph, above), lambda _refs: got)


def root_at(size: int, get: NodeGetter) -> RootHash:
    """MTH of the first ``size`` leaves, folded from stored perfect nodes in one ``get`` call."""
    if size < 0:
        raise LedgerError("tree size must be non-negative", field="size")
    if size == 0:
        return EMPTY_ROOT
    refs = perfect_subtrees(0, size)
    got = _fetch(get, refs)
    return RootHash(_fold([got[r] for r in refs]))


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2: raise VerificationError unless ``proof`` links ``leaf`` to ``root``."""
    _check_hash(leaf, "leaf_hash", VerificationError)
    _check_hash(root, "root", VerificationError)
    for p in proof:
        _check_hash(p, "proof", VerificationError)
    if index < 0 or size <= 0 or index >= size:
        raise VerificationError("inclusion proof index is outside the tree", field="index")
    fn, sn, r = index, size - 1, bytes(leaf)
    for p in proof:
        if sn == 0:
            raise VerificationError("inclusion proof is too long", field="proof")
        if fn & 1 or fn == sn:
            r = _sha256(_NODE + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(_NODE + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("inclusion proof is too short", field="proof")
    if r != root:
        raise VerificationError("inclusion proof does not lead to the root", field="root")


def verify_consistency(
    m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2: raise VerificationError unless tree ``n`` extends tree ``m``.

    Edge cases (as transparency-dev/merkle): ``m > n`` and ``m == 0`` are errors; ``m == n``
    needs an empty proof and equal roots. Roots are always length-checked (fail closed).
    """
    _check_hash(root_m, "root1", VerificationError)
    _check_hash(root_n, "root2", VerificationError)
    for p in proof:
        _check_hash(p, "proof", VerificationError)
    if m < 0 or n < 0 or m > n:
        raise VerificationError("consistency needs 0 <= size1 <= size2", field="size1")
    if m == 0:
        raise VerificationError(
            "consistency with an empty tree is meaningless", field="size1", fix="use size1 > 0"
        )
    if m == n:
        if proof:
            raise VerificationError("equal sizes need an empty proof", field="proof")
        if root_m != root_n:
            raise VerificationError("equal sizes but the roots differ", field="root2")
        return
    if not proof:
        raise VerificationError("consistency proof is empty", field="proof")
    path = list(proof)
    if m & (m - 1) == 0:
        path.insert(0, root_m)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is too long", field="proof")
        if fn & 1 or fn == sn:
            fr = _sha256(_NODE + c + fr).digest()
            sr = _sha256(_NODE + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha256(_NODE + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("consistency proof is too short", field="proof")
    if fr != root_m:
        raise VerificationError("consistency proof does not match the old root", field="root1")
    if sr != root_n:
        raise VerificationError("consistency proof does not match the new root", field="root2")


class CompactRange:
    """The right frontier of a growing tree: enough to append leaves and compute the root.

    ``frontier`` holds the hashes of ``perfect_subtrees(0, size)``, left to right. Appending
    takes a leaf *hash* (``hash_leaf(entry)``), not the entry itself.
    """

    __slots__ = ("_hashes", "size")

    def __init__(self, size: int = 0, frontier: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise LedgerError("tree size must be non-negative", field="size")
        if len(frontier) != size.bit_count():
            raise LedgerError(
                "frontier does not match the tree size",
                field="frontier",
                fix="pass the hashes of perfect_subtrees(0, size), left to right",
            )
        for h in frontier:
            _check_hash(h, "frontier", LedgerError)
        self.size = size
        self._hashes: list[bytes] = [bytes(h) for h in frontier]

    @staticmethod
    def frontier_refs(size: int) -> list[NodeRef]:
        """Which perfect nodes make up the frontier of a tree of ``size`` leaves."""
        return perfect_subtrees(0, size)

    def frontier(self) -> list[bytes]:
        return list(self._hashes)

    def append(self, leaf: bytes) -> list[tuple[NodeRef, bytes]]:
        """Add one leaf hash; return every perfect node it completes, the leaf first."""
        _check_hash(leaf, "leaf_hash", LedgerError)
        return self.extend((leaf,))

    def extend(
        self, leaves: Iterable[bytes], *, collect: bool = True
    ) -> list[tuple[NodeRef, bytes]]:
        """Append many leaf hashes; the fast path for integration and fsck.

        Returns the completed perfect nodes (bottom-up per leaf) unless ``collect`` is false,
        in which case it returns ``[]`` and allocates nothing per node. A hash of the wrong
        length raises; the leaves before it stay appended.
        """
        stack = self._hashes
        pop, keep = stack.pop, stack.append
        size = self.size
        out: list[tuple[NodeRef, bytes]] = []
        push = out.append
        sha = _sha256
        node = _NODE
        width = HASH_SIZE
        try:
            # Each trailing 1-bit of the old size is a perfect subtree the new leaf completes.
            if collect:
                for h in leaves:
                    if len(h) != width:
                        _check_hash(h, "leaf_hash", LedgerError)
                    push(((0, size), h))
                    s = size
                    level = 0
                    while s & 1:
                        h = sha(node + pop() + h).digest()
                        level += 1
                        s >>= 1
                        push(((level, s), h))
                    keep(h)
                    size += 1
            else:
                for h in leaves:
                    if len(h) != width:
                        _check_hash(h, "leaf_hash", LedgerError)
                    s = size
                    while s & 1:
                        h = sha(node + pop() + h).digest()
                        s >>= 1
                    keep(h)
                    size += 1
        finally:
            self.size = size
        return out

    def append_subtree(self, level: int, root: bytes) -> None:
        """Append the ``2**level`` leaves of a perfect subtree, given only its ``root``.

        The same as :meth:`extend` with those leaves (``collect=False``), when the size is a
        multiple of ``2**level`` (LedgerError otherwise): the subtree is then one node of
        the tree whose leaves are blocks of ``2**level``.
        """
        _check_hash(root, "subtree root", LedgerError)
        if level < 0 or self.size & ((1 << level) - 1):
            raise LedgerError(
                "a perfect subtree is appended only at a multiple of its width",
                field="level",
                fix="append the leaves one by one with extend()",
            )
        stack = self._hashes
        h = bytes(root)
        s = self.size >> level
        while s & 1:
            h = _sha256(_NODE + stack.pop() + h).digest()
            s >>= 1
        stack.append(h)
        self.size += 1 << level

    def extend_root(self, leaves: Iterable[bytes]) -> RootHash:
        """Append leaf hashes without collecting nodes and return the new root."""
        self.extend(leaves, collect=False)
        return self.root()

    def root(self) -> RootHash:
        if not self._hashes:
            return EMPTY_ROOT
        return RootHash(_fold(self._hashes))
