"""Where the third-party vectors live, and how a test module loads them (read-only)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(
    os.environ.get("CAREWALL_VECTORS")
    or Path(__file__).resolve().parents[2].parent / "shared" / "vectors"
)


def require(sub: str) -> Path:
    """The vector directory ``sub``; skips the calling module when the vectors are absent."""
    path = VECTORS / sub
    if not path.is_dir():
        pytest.skip(f"test vectors not found at {path}", allow_module_level=True)
    return path


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def b64(s: str) -> bytes:
    return base64.b64decode(s)
