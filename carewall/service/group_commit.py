"""Group commit: writers that arrive while a transaction is under way share the next one.

Every write to the log holds the ledger's lock until its commit, so a second writer waits a
whole commit (a round trip and a flush to disk) for each one ahead of it. Here the first
writer to arrive leads: it writes its own item. Writers arriving meanwhile queue; when the
leader's transaction ends, the first of them leads the next transaction for everyone
queued, so N waiting writers pay one commit instead of N.

A batch's outcome is all or nothing. When its transaction fails, no item of it is
recorded, and each item's writer is told to write on its own (``None``), so one bad item
cannot fail the others and every error reaches the writer it belongs to.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False)
class _Waiter(Generic[T, R]):
    item: T
    # Set for a writer that queues, the only one that waits (a leader never does).
    woken: threading.Event | None = None
    leads: bool = False
    result: R | None = None


class GroupCommit(Generic[T, R]):
    """Run ``write`` over items offered by concurrent threads, in batches of at most
    ``max_batch`` (in the order they arrived).

    ``write(items)`` makes one transaction of them and returns one result per item, or
    raises (then every item's ``offer`` returns None: write it alone).
    """

    def __init__(self, write: Callable[[Sequence[T]], Sequence[R]], max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._write = write
        self._max = max_batch
        self._mutex = threading.Lock()
        self._queue: deque[_Waiter[T, R]] = deque()
        self._busy = False

    @property
    def waiting(self) -> int:
        """How many items wait for the transaction under way to end."""
        with self._mutex:
            return len(self._queue)

    def offer(self, item: T) -> R | None:
        """The item's result once its batch has committed; None if that batch failed."""
        me: _Waiter[T, R] = _Waiter(item)
        with self._mutex:
            if self._busy:
                me.woken = threading.Event()
                self._queue.append(me)
            else:
                self._busy = me.leads = True
        if me.woken is not None:
            me.woken.wait()
            if not me.leads:
                return me.result
        with self._mutex:
            batch = [me]
            while self._queue and len(batch) < self._max:
                batch.append(self._queue.popleft())
        results: Sequence[R | None] = [None] * len(batch)
        try:
            results = self._write([w.item for w in batch])
        except Exception:
            pass  # nothing of the batch is recorded: each writer writes alone (None)
        finally:
            # Even on an interrupt: every follower is woken, and the next leader named.
            for w, r in zip(batch, results, strict=True):
                w.result = r
            with self._mutex:
                following = self._queue.popleft() if self._queue else None
                if following is None:
                    self._busy = False
                else:
                    following.leads = True
            for w in batch[1:]:
                _wake(w)
            if following is not None:
                _wake(following)
        return me.result


def _wake(waiter: _Waiter[T, R]) -> None:
    """Wake a queued writer (every writer in a batch but its leader has queued, so has
    its event)."""
    if waiter.woken is not None:
        waiter.woken.set()
