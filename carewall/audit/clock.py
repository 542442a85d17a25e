"""The replay's clock for deadlines: times in the schema's form, and days between them.

The clock an entry is judged at is its own time, or the latest time of the entries read
before it if that is later: the operator writes the times, and an entry dated back must
not make a deadline look met (the backdating itself is a finding of :mod:`.replay`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

__all__ = ["clock", "days"]


def _when(time: str) -> datetime | None:
    try:
        return datetime.fromisoformat(time.replace("Z", "+00:00"))
    except ValueError:
        return None


def days(since: str, until: str) -> float:
    """Days from ``since`` to ``until`` (0 if either is not a time)."""
    a, b = _when(since), _when(until)
    return 0.0 if a is None or b is None else (b - a).total_seconds() / 86400


def clock(latest_time: str, e: Mapping[str, Any]) -> str:
    """The time entry ``e`` is judged at, given the latest time read before it (times in
    the schema's form sort as the times they name)."""
    time: str = e["time"]
    return max(time, latest_time)
