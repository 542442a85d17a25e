"""NewTypes for raw bytes, so a root is never passed where a leaf hash is expected."""

from __future__ import annotations

from typing import NewType

__all__ = ["HASH_SIZE", "KeyID", "LeafHash", "NodeHash", "RootHash"]

HASH_SIZE = 32

LeafHash = NewType("LeafHash", bytes)
NodeHash = NewType("NodeHash", bytes)
RootHash = NewType("RootHash", bytes)
KeyID = NewType("KeyID", bytes)
