"""The cyclic garbage collector paused for one long pass (an audit run, a ledger check).

Such a pass allocates containers by the hundred thousand (a row per entry, the replay's
growing state) and frees what it drops by reference counting; the collector would sweep
the live ones again and again (a tenth to a quarter of the pass) and find no garbage. The
few cycles a pass makes wait for the collector's next full run after it.
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
        _hand_over()
        gc.enable()


def _hand_over() -> None:
    """Move what the pass made straight to the oldest generation.

    Every container allocated while the collector was off is still counted as young, so the
    first allocation after it is on again would run a young collection over all of them (the
    whole replay's state: 4% of an audit), to find them alive. ``freeze`` then ``unfreeze``
    moves every tracked object to the oldest generation without looking at any, and resets
    the young count; what the pass left as cyclic garbage waits for the next full
    collection. Skipped when anything is frozen already: unfreezing would release another
    caller's objects too.
    """
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
