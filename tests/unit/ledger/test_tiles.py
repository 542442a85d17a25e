"""tlog-tiles paths, tile contents and entry bundles."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carewall.errors import InputError
from carewall.ledger.merkle import perfect_subtrees
from carewall.ledger.tiles import (
    decode_entry_bundle,
    encode_entry_bundle,
    encode_index,
    entries_path,
    entry_bundles_for_size,
    parse_tile_path,
    tile_path,
    tile_refs,
    tiles_for_size,
)


@pytest.mark.parametrize(
    ("n", "want"),
    [(0, "000"), (7, "007"), (999, "999"), (1000, "x001/000"), (1234067, "x001/x234/067")],
)
def test_encode_index(n: int, want: str) -> None:
    assert encode_index(n) == want


@given(st.integers(0, 63), st.integers(0, 10**12), st.one_of(st.none(), st.integers(1, 255)))
def test_paths_round_trip(level: int, n: int, width: int | None) -> None:
    assert parse_tile_path(tile_path(level, n, width)) == (level, n, width)
    assert parse_tile_path(entries_path(n, width)) == ("entries", n, width)


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/1",
        "tile/0/0001",
        "tile/01/000",
        "tile/64/000",
        "tile/-1/000",
        "tile/0/001/002",
        "tile/0/x001",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/07",
        "tile/data/000",
        "tile/0/000/",
        "/tile/0/000",
        "tile/0/000.p/",
    ],
)
def test_invalid_paths(path: str) -> None:
    with pytest.raises(InputError):
        parse_tile_path(path)


def test_full_width_is_written_without_suffix() -> None:
    assert tile_path(1, 3, 256) == "tile/1/003"
    assert entries_path(2, 256) == "tile/entries/002"


def test_tile_refs() -> None:
    assert tile_refs(1, 2, 3) == [(8, 512), (8, 513), (8, 514)]
    assert len(tile_refs(0, 0, 256)) == 256


@settings(deadline=None, max_examples=40)
@given(st.integers(1, 70_000))
def test_tiles_hold_the_roots_perfect_nodes(size: int) -> None:
    # Every perfect node on the tree's frontier at a tile level lies in some published tile.
    held = set()
    for path in tiles_for_size(size):
        level, n, width = parse_tile_path(path)
        assert isinstance(level, int)
        held.update(tile_refs(level, n, width or 256))
    for lvl, idx in perfect_subtrees(0, size):
        if lvl % 8 == 0:
            assert (lvl, idx) in held


def test_entry_bundles_for_size() -> None:
    assert entry_bundles_for_size(0) == []
    assert entry_bundles_for_size(513) == [
        "tile/entries/000",
        "tile/entries/001",
        "tile/entries/002.p/1",
    ]


@given(st.lists(st.binary(max_size=300), max_size=256))
def test_entry_bundle_round_trip(entries: list[bytes]) -> None:
    data = encode_entry_bundle(entries)
    assert decode_entry_bundle(data) == entries
    assert len(data) == sum(2 + len(e) for e in entries)


@pytest.mark.parametrize(
    "data", [b"\x00", b"\x00\x05abc", b"\x00\x01a\x00"], ids=["half-length", "short-entry", "trail"]
)
def test_truncated_bundles(data: bytes) -> None:
    with pytest.raises(InputError):
        decode_entry_bundle(data)


def test_bundle_limits() -> None:
    with pytest.raises(InputError):
        encode_entry_bundle([b""] * 257)
    with pytest.raises(InputError):
        encode_entry_bundle([b"x" * 65536])
