"""The cyclic garbage collector paused for one long pass (an audit run, a ledger check).

Such a pass allocates containers by the hundred thousand (a row per entry, the replay's
growing state) and frees what it drops by reference counting; the collector would sweep
the live ones again and again (a tenth to a quarter of the pass) and find no garbage. The
few cycles a pass makes wait for the collector's next run after it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused"]


@contextmanager
def paused() -> Iterator[None]:
    """The collector off for the block and on again after it, however it ends; a caller
    that had already turned it off keeps it off."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
