"""The public statistics of an instance, read from its public log alone (never its records).

Statistics cover the latest *signed* checkpoint, or an earlier size, so that every figure
names a checkpoint an auditor can verify and recompute (:mod:`carewall.statistics`, the
same code ``carewall audit`` runs). The log is append-only, so the statistics at a size
never change: each ledger keeps one running :class:`~carewall.statistics.Tally` at the
largest size read so far, extended with only the new entries, and a few results for
earlier sizes asked for explicitly.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING

from carewall.errors import InputError, StorageError
from carewall.ledger import Ledger
from carewall.ledger.publisher import latest
from carewall.statistics import Statistics, StatisticsError, Tally, compute

if TYPE_CHECKING:
    from carewall.service.facade import Service

__all__ = ["signed_size", "statistics_at", "statistics_of"]

CHUNK = 1000  # entries read per query
EARLIER = 16  # results kept per ledger for sizes below the running tally's


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tally = Tally()
        self.size = 0
        self.last: Statistics | None = None  # the tally's result at ``size``
        self.earlier: OrderedDict[int, Statistics] = OrderedDict()


_caches: weakref.WeakKeyDictionary[Ledger, _Cache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def signed_size(ledger: Ledger) -> int:
    """The size of the latest signed checkpoint (0 before the first is signed)."""
    with ledger.store.read() as conn:
        last = latest(conn)
    return 0 if last is None else last[0]


def _entries(ledger: Ledger, start: int, end: int) -> list[dict[str, object]]:
    out = []
    for i, data in enumerate(ledger.entries(start, end), start):
        try:
            entry = json.loads(data)
        except ValueError as e:
            raise StorageError(
                f"stored entry {i} is not JSON", fix="run `carewall ledger verify` on the server"
            ) from e
        out.append(entry)
    return out


def _stream(ledger: Ledger, start: int, end: int) -> Iterator[dict[str, object]]:
    """Entries ``start … end-1``, read a chunk at a time so a long log is never all in memory."""
    for lo in range(start, end, CHUNK):
        yield from _entries(ledger, lo, min(end, lo + CHUNK))


def _unreadable(e: StatisticsError) -> StorageError:
    err = StorageError(
        f"the log cannot be counted: {e}", fix="run `carewall ledger verify` on the server"
    )
    err.__cause__ = e
    return err


def statistics_of(ledger: Ledger, size: int | None = None) -> Statistics:
    """The statistics of ``ledger`` at ``size`` (default: its latest signed checkpoint).

    InputError (naming ``size``) unless 1 ≤ ``size`` ≤ the latest signed checkpoint's size.
    """
    signed = signed_size(ledger)
    if size is None:
        size = signed
    elif isinstance(size, bool) or not 1 <= size <= signed:
        raise InputError(
            f"must be a size from 1 to {signed}, the latest signed checkpoint's",
            field="size",
            fix=f"ask for a whole number from 1 to {signed}, or leave size out for the latest",
        )
    with _caches_lock:
        cache = _caches.setdefault(ledger, _Cache())
    with cache.lock:
        if size >= cache.size:
            if cache.last is None or size > cache.size:
                for entry in _stream(ledger, cache.size, size):
                    try:
                        cache.tally.feed(entry)
                    except StatisticsError as e:
                        cache.last = None  # the tally has moved on from the last result
                        raise _unreadable(StatisticsError(f"entry {cache.size}: {e}")) from e
                    cache.size += 1
                cache.last = cache.tally.result(ledger.origin, size)
            return cache.last
        found = cache.earlier.get(size)
        if found is not None:
            cache.earlier.move_to_end(size)
            return found
    try:
        stats = compute(_stream(ledger, 0, size), origin=ledger.origin, size=size)
    except StatisticsError as e:
        raise _unreadable(e) from e
    with cache.lock:
        cache.earlier[size] = stats
        while len(cache.earlier) > EARLIER:
            cache.earlier.popitem(last=False)
    return stats


def statistics_at(service: Service, size: int | None = None) -> Statistics:
    """The statistics of ``service``'s public log at ``size`` (default: latest signed)."""
    return statistics_of(service.ledger, size)
