"""C2SP tlog-tiles: tile paths, which perfect nodes a tile holds, and entry bundles.

Spec: https://c2sp.org/tlog-tiles — tiles are 8 levels high and 256 hashes wide; a tile at
level ``L`` and index ``N`` holds the perfect nodes ``(8L, 256N + i)``; a partial tile of
width ``W`` holds the first ``W``. Entry bundles hold up to 256 entries, each prefixed with a
big-endian 16-bit length.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from carewall.errors import InputError
from carewall.ledger.merkle import NodeRef

__all__ = [
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "decode_entry_bundle",
    "encode_entry_bundle",
    "encode_index",
    "entries_path",
    "entry_bundles_for_size",
    "parse_tile_path",
    "tile_path",
    "tile_refs",
    "tiles_for_size",
]

TILE_HEIGHT = 8
TILE_WIDTH = 256
_MAX_ENTRY = 0xFFFF
_PATH = re.compile(
    r"tile/(?P<level>entries|0|[1-9][0-9]?)/(?P<n>(?:x[0-9]{3}/)*[0-9]{3})(?:\.p/(?P<w>[1-9][0-9]{0,2}))?"
)


def encode_index(n: int) -> str:
    """1234067 -> ``x001/x234/067``: 3-digit groups, every group but the last x-prefixed."""
    if n < 0:
        raise InputError("tile index must be non-negative", field="n")
    digits = str(n)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])


def _check_width(width: int | None) -> str:
    if width is None:
        return ""
    if not 1 <= width < TILE_WIDTH:
        raise InputError("partial tile width must be 1..255", field="width")
    return f".p/{width}"


def tile_path(level: int, n: int, width: int | None = None) -> str:
    """``tile/L/N[.p/W]``; ``width`` None (or 256) means a full tile."""
    if not 0 <= level <= 63:
        raise InputError("tile level must be 0..63", field="level")
    if width == TILE_WIDTH:
        width = None
    return f"tile/{level}/{encode_index(n)}{_check_width(width)}"


def entries_path(n: int, width: int | None = None) -> str:
    """``tile/entries/N[.p/W]``, the bundle of entries ``[256N, 256N + W)``."""
    if width == TILE_WIDTH:
        width = None
    return f"tile/entries/{encode_index(n)}{_check_width(width)}"


def parse_tile_path(path: str) -> tuple[int | Literal["entries"], int, int | None]:
    """``(level or "entries", N, W or None)``; InputError on any path the spec does not allow."""
    m = _PATH.fullmatch(path)
    if m is None:
        raise InputError(
            "not a tile path",
            field="path",
            fix="expected tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]",
        )
    raw_level = m["level"]
    level: int | Literal["entries"] = "entries" if raw_level == "entries" else int(raw_level)
    if isinstance(level, int) and level > 63:
        raise InputError("tile level must be 0..63", field="path")
    n = int(m["n"].replace("x", "").replace("/", ""))
    width = int(m["w"]) if m["w"] else None
    if width is not None and width >= TILE_WIDTH:
        raise InputError("partial tile width must be 1..255", field="path")
    return level, n, width


def tile_refs(level: int, n: int, width: int = TILE_WIDTH) -> list[NodeRef]:
    """The perfect nodes a hash tile holds, in order."""
    if not 1 <= width <= TILE_WIDTH or level < 0 or n < 0:
        raise InputError("tile width must be 1..256", field="width")
    base = n * TILE_WIDTH
    lvl = level * TILE_HEIGHT
    return [(lvl, base + i) for i in range(width)]


def tiles_for_size(size: int) -> list[str]:
    """Every hash tile path a tree of ``size`` leaves publishes, level by level."""
    if size < 0:
        raise InputError("tree size must be non-negative", field="size")
    out: list[str] = []
    level = 0
    count = size  # hashes at the bottom of this tile level
    while count:
        full, partial = divmod(count, TILE_WIDTH)
        out.extend(tile_path(level, n) for n in range(full))
        if partial:
            out.append(tile_path(level, full, partial))
        count >>= TILE_HEIGHT
        level += 1
    return out


def entry_bundles_for_size(size: int) -> list[str]:
    """Every entry bundle path a tree of ``size`` leaves publishes."""
    if size < 0:
        raise InputError("tree size must be non-negative", field="size")
    full, partial = divmod(size, TILE_WIDTH)
    out = [entries_path(n) for n in range(full)]
    if partial:
        out.append(entries_path(full, partial))
    return out


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    if len(entries) > TILE_WIDTH:
        raise InputError("an entry bundle holds at most 256 entries", field="entries")
    parts: list[bytes] = []
    for e in entries:
        if len(e) > _MAX_ENTRY:
            raise InputError("an entry must be at most 65535 bytes", field="entries")
        parts.append(len(e).to_bytes(2, "big"))
        parts.append(e)
    return b"".join(parts)


def decode_entry_bundle(data: bytes) -> list[bytes]:
    out: list[bytes] = []
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise InputError("entry bundle ends inside a length prefix", field="bundle")
        n = int.from_bytes(data[i : i + 2], "big")
        i += 2
        if i + n > len(data):
            raise InputError("entry bundle ends inside an entry", field="bundle")
        out.append(bytes(data[i : i + n]))
        i += n
    if len(out) > TILE_WIDTH:
        raise InputError("an entry bundle holds at most 256 entries", field="bundle")
    return out
