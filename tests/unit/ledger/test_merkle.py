"""Properties of the RFC 9162 core: generated proofs verify, any tampering fails."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from carewall.errors import LedgerError, VerificationError
from carewall.ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    NodeRef,
    consistency_proof,
    consistency_proof_refs,
    hash_leaf,
    inclusion_proof,
    inclusion_proof_refs,
    perfect_subtrees,
    root_at,
    root_of,
    verify_consistency,
    verify_inclusion,
)


def _leaves(n: int) -> list[bytes]:
    return [hash_leaf(i.to_bytes(4, "big")) for i in range(n)]


def _store(leaves: list[bytes]) -> dict[NodeRef, bytes]:
    return dict(CompactRange().extend(leaves))


class CountingGetter:
    def __init__(self, nodes: dict[NodeRef, bytes]) -> None:
        self.nodes = nodes
        self.calls = 0

    def __call__(self, refs: object) -> dict[NodeRef, bytes]:
        self.calls += 1
        return self.nodes


sizes = st.integers(min_value=1, max_value=300)


@settings(deadline=None)
@given(sizes, st.data())
def test_inclusion_proofs_verify(size: int, data: st.DataObject) -> None:
    leaves = _leaves(size)
    get = CountingGetter(_store(leaves))
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, get)
    assert get.calls == 1
    verify_inclusion(index, size, leaves[index], proof, root_of(leaves))
    assert set(inclusion_proof_refs(index, size)) <= set(get.nodes)


@settings(deadline=None)
@given(sizes, st.data())
def test_consistency_proofs_verify(size: int, data: st.DataObject) -> None:
    leaves = _leaves(size)
    get = CountingGetter(_store(leaves))
    m = data.draw(st.integers(1, size))
    proof = consistency_proof(m, size, get)
    assert get.calls == (0 if m == size else 1)
    verify_consistency(m, size, root_of(leaves[:m]), root_of(leaves), proof)
    assert set(consistency_proof_refs(m, size)) <= set(get.nodes)


def _flip(b: bytes, bit: int) -> bytes:
    out = bytearray(b)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def _shape(index: int, size: int) -> list[bool] | None:
    """The left/right sequence RFC 9162 §2.1.3.2 walks for (index, size)."""
    if index >= size:
        return None
    fn, sn, out = index, size - 1, []
    while sn:
        left = bool(fn & 1 or fn == sn)
        out.append(left)
        if left and not fn & 1:
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        fn, sn = fn >> 1, sn >> 1
    return out


@settings(deadline=None)
@given(st.integers(2, 200), st.data())
def test_any_inclusion_tampering_fails(size: int, data: st.DataObject) -> None:
    leaves = _leaves(size)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, CountingGetter(_store(leaves)))
    root = root_of(leaves)
    how = data.draw(st.sampled_from(["leaf", "proof", "index", "size", "root", "drop", "add"]))
    bit = data.draw(st.integers(0, 255))
    args: list[object] = [index, size, leaves[index], proof, root]
    if how == "leaf":
        args[2] = _flip(leaves[index], bit)
    elif how == "proof":
        assume(proof)
        k = data.draw(st.integers(0, len(proof) - 1))
        args[3] = [_flip(p, bit) if i == k else p for i, p in enumerate(proof)]
    elif how == "index":
        other = data.draw(st.integers(0, size - 1))
        assume(other != index)
        args[0] = other
    elif how == "size":
        other = data.draw(st.integers(1, 2 * size))
        assume(other != size)
        # RFC 9162 binds the size only through the path's shape (the root binds the rest), so
        # a size with the same left/right path (e.g. 17 vs 18 for leaf 0) cannot be detected.
        assume(_shape(index, size) != _shape(index, other))
        args[1] = other
    elif how == "root":
        args[4] = _flip(root, bit)
    elif how == "drop":
        assume(proof)
        args[3] = proof[:-1]
    else:
        args[3] = [*proof, root]
    with pytest.raises(VerificationError):
        verify_inclusion(*args)  # type: ignore[arg-type]


@settings(deadline=None)
@given(st.integers(2, 200), st.data())
def test_any_consistency_tampering_fails(size: int, data: st.DataObject) -> None:
    leaves = _leaves(size)
    m = data.draw(st.integers(1, size - 1))
    proof = consistency_proof(m, size, CountingGetter(_store(leaves)))
    r1, r2 = root_of(leaves[:m]), root_of(leaves)
    how = data.draw(st.sampled_from(["proof", "root1", "root2", "m", "drop"]))
    bit = data.draw(st.integers(0, 255))
    args: list[object] = [m, size, r1, r2, proof]
    if how == "proof":
        k = data.draw(st.integers(0, len(proof) - 1))
        args[4] = [_flip(p, bit) if i == k else p for i, p in enumerate(proof)]
    elif how == "root1":
        args[2] = _flip(r1, bit)
    elif how == "root2":
        args[3] = _flip(r2, bit)
    elif how == "m":
        other = data.draw(st.integers(1, size))
        assume(other != m)
        args[0] = other
    else:
        args[4] = proof[:-1]
    with pytest.raises(VerificationError):
        verify_consistency(*args)  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.binary(max_size=8), max_size=140))
def test_compact_range_matches_reference_for_every_prefix(data: list[bytes]) -> None:
    leaves = [hash_leaf(d) for d in data]
    cr = CompactRange()
    nodes: dict[NodeRef, bytes] = {}
    for i, leaf in enumerate(leaves):
        completed = cr.append(leaf)
        assert completed[0] == ((0, i), leaf)
        nodes.update(completed)
        assert cr.size == i + 1
        assert cr.root() == root_of(leaves[: i + 1])
        assert [nodes[r] for r in CompactRange.frontier_refs(i + 1)] == cr.frontier()
        # a range rebuilt from its frontier continues identically
        again = CompactRange(cr.size, cr.frontier())
        assert again.root() == cr.root()
    for size in range(len(leaves) + 1):
        assert root_at(size, lambda refs: {r: nodes[r] for r in refs}) == root_of(leaves[:size])


def _reference_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 MTH written as the RFC's recursion, independent of CompactRange."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(
        b"\x01" + _reference_root(leaves[:k]) + _reference_root(leaves[k:])
    ).digest()


@given(st.integers(0, 100))
def test_root_of_is_the_rfc_recursion(n: int) -> None:
    leaves = _leaves(n)
    assert root_of(leaves) == _reference_root(leaves)


@given(st.integers(0, 2**40), st.integers(0, 2**12))
def test_perfect_subtrees_cover_the_range_exactly(begin: int, length: int) -> None:
    end = begin + length
    refs = perfect_subtrees(begin, end)
    pos = begin
    for level, index in refs:
        assert index << level == pos  # contiguous, left to right, aligned
        pos += 1 << level
    assert pos == end
    assert len(refs) <= 2 * max(1, length.bit_length())


def test_perfect_subtrees_from_zero_is_the_mth_split() -> None:
    assert perfect_subtrees(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert perfect_subtrees(0, 0) == []
    assert perfect_subtrees(5, 8) == [(0, 5), (1, 3)]


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: verify_inclusion(0, 1, b"x" * 31, [], b"x" * 32), id="short-leaf"),
        pytest.param(lambda: verify_inclusion(0, 1, b"x" * 32, [], b"x" * 33), id="long-root"),
        pytest.param(
            lambda: verify_inclusion(0, 2, b"x" * 32, [b"y" * 16], b"x" * 32), id="short-proof"
        ),
        pytest.param(lambda: verify_consistency(1, 2, b"", b"x" * 32, []), id="empty-root1"),
    ],
)
def test_wrong_hash_lengths_are_refused(call: object) -> None:
    with pytest.raises(VerificationError, match="must be exactly 32 bytes"):
        call()  # type: ignore[operator]


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: inclusion_proof(5, 5, lambda r: {}), id="index-equals-size"),
        pytest.param(lambda: inclusion_proof(-1, 5, lambda r: {}), id="negative-index"),
        pytest.param(lambda: consistency_proof(6, 5, lambda r: {}), id="from-beyond-size"),
        pytest.param(lambda: inclusion_proof(0, 5, lambda r: {}), id="missing-node"),
        pytest.param(lambda: root_at(3, lambda r: dict.fromkeys(r, b"short")), id="bad-node"),
        pytest.param(lambda: CompactRange(3, [bytes(32)]), id="frontier-size-mismatch"),
        pytest.param(lambda: CompactRange().append(b"leaf data"), id="append-non-hash"),
        pytest.param(lambda: perfect_subtrees(5, 4), id="reversed-range"),
    ],
)
def test_bad_requests_raise_ledger_error(call: object) -> None:
    with pytest.raises(LedgerError):
        call()  # type: ignore[operator]


def test_edge_sizes() -> None:
    assert root_of([]) == EMPTY_ROOT
    assert root_at(0, lambda r: {}) == EMPTY_ROOT
    assert consistency_proof(0, 5, lambda r: {}) == []
    assert consistency_proof(4, 4, lambda r: {}) == []
    leaf = hash_leaf(b"only")
    assert inclusion_proof(0, 1, lambda r: {(0, 0): leaf}) == []
    verify_inclusion(0, 1, leaf, [], leaf)


def test_extend_without_collect_returns_nothing_and_same_root() -> None:
    leaves = _leaves(1000)
    a, b = CompactRange(), CompactRange()
    assert a.extend(leaves, collect=False) == []
    nodes = b.extend(leaves)
    assert len(nodes) == 2 * 1000 - (1000).bit_count()
    assert a.root() == b.root() == root_of(leaves)


@settings(max_examples=200, deadline=None)
@given(before=st.integers(0, 40), level=st.integers(0, 5), blocks=st.integers(1, 4))
def test_a_perfect_subtree_appends_as_its_leaves_do(before: int, level: int, blocks: int) -> None:
    """append_subtree(level, root) at a multiple of 2**level is extend() of those leaves."""
    start = before << level
    leaves = [hashlib.sha256(b"%d" % i).digest() for i in range(start + (blocks << level))]
    whole = CompactRange()
    whole.extend(leaves, collect=False)
    cr = CompactRange()
    cr.extend(leaves[:start], collect=False)
    for b in range(blocks):
        lo = start + (b << level)
        cr.append_subtree(level, root_of(leaves[lo : lo + (1 << level)]))
    assert (cr.size, cr.frontier(), cr.root()) == (whole.size, whole.frontier(), whole.root())


@pytest.mark.parametrize("level", [1, 3, 8])
def test_a_subtree_is_appended_only_at_a_multiple_of_its_width(level: int) -> None:
    cr = CompactRange()
    cr.extend([bytes(32)], collect=False)
    with pytest.raises(LedgerError, match="multiple of its width"):
        cr.append_subtree(level, bytes(32))
    assert cr.size == 1  # unchanged


def test_a_subtree_root_must_be_a_hash() -> None:
    with pytest.raises(LedgerError, match="32 bytes"):
        CompactRange().append_subtree(3, b"root")
    with pytest.raises(LedgerError):
        CompactRange().append_subtree(-1, bytes(32))
