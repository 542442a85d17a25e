"""tlog-tiles vectors: C2SP index encoding and tile inventory, x/mod tile paths."""

from __future__ import annotations

from typing import Any

import pytest
from vectorlib import load, require

from carewall.errors import InputError
from carewall.ledger.tiles import encode_index, parse_tile_path, tile_path, tiles_for_size

TILES = require("tiles")
C2SP = load(TILES / "c2sp-tlog-tiles-examples.json")
XMOD = load(TILES / "golang-x-mod-tlog.json")


@pytest.mark.parametrize("case", C2SP["index_path_encoding"], ids=lambda c: str(c["index"]))
def test_index_encoding(case: dict[str, Any]) -> None:
    assert encode_index(case["index"]) == case["path_elements"]


@pytest.mark.parametrize("case", C2SP["tree_tiles"], ids=lambda c: f"size-{c['tree_size']}")
def test_tile_inventory(case: dict[str, Any]) -> None:
    want: list[str] = []
    for level, t in sorted(case["tiles"].items(), key=lambda kv: int(kv[0])):
        want += [tile_path(int(level), n) for n in range(t["full"])]
        if t["partial_width"]:
            want.append(tile_path(int(level), t["full"], t["partial_width"]))
    assert tiles_for_size(case["tree_size"]) == want


def _to_c2sp(path: str) -> str:
    """x/mod writes tile/<H>/<L>/...; C2SP drops <H> (always 8) and says entries for data."""
    parts = path.split("/")
    level = "entries" if parts[2] == "data" else parts[2]
    return "/".join(["tile", level, *parts[3:]])


@pytest.mark.parametrize("case", XMOD["tile_paths"], ids=lambda c: c["path"])
def test_xmod_tile_paths(case: dict[str, Any]) -> None:
    path = _to_c2sp(case["path"])
    if not case["valid"]:
        with pytest.raises(InputError):
            parse_tile_path(path)
        return
    t = case["tile"]
    level, n, width = parse_tile_path(path)
    assert level == ("entries" if t["L"] == -1 else t["L"])
    assert n == t["N"]
    partial = ".p/" in path
    assert width == (t["W"] if partial else None)
