"""A log whose volume is bounded whatever the clients do.

A hostile client can make the server log the same thing over and over (a malformed request,
a slow client closed, a connection over the cap); unbounded, that fills the disk (190 MB in
40 s was seen). :class:`RepeatLimitFilter` lets the first ``burst`` records of each kind
through per ``window`` seconds, and no more than ``total`` records of all kinds, and drops
the rest; the last record let through says that more like it will be dropped, and the first
one after the window says how many were. :class:`BoundedFormatter` cuts a single record
(a traceback included) at ``max_chars``.

:func:`log_config` is the ``logging.config.dictConfig`` for ``carewall serve``: one handler
on stderr, with the filter, that uvicorn's, asyncio's and carewall's loggers all reach.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["BoundedFormatter", "RepeatLimitFilter", "log_config"]


@dataclass
class _Window:
    start: float
    passed: int = 0
    dropped: int = 0


class RepeatLimitFilter(logging.Filter):
    """At most ``burst`` records per kind and ``total`` in all, per ``window`` seconds.

    A record's kind is its logger, level and message template (the format string before its
    arguments), so one message logged for many connections is one kind. Thread-safe.
    """

    def __init__(
        self,
        burst: int = 10,
        total: int = 300,
        window: float = 60.0,
        max_kinds: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst = burst
        self.total = total
        self.window = window
        self.max_kinds = max_kinds
        self._clock = clock
        self._lock = threading.Lock()
        self._kinds: OrderedDict[tuple[str, int, str], _Window] = OrderedDict()
        self._all = _Window(clock())

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            if now - self._all.start >= self.window:
                self._all = _Window(now, dropped=self._all.dropped)
            kind = self._kinds.get(key)
            earlier = 0
            if kind is None or now - kind.start >= self.window:
                earlier = kind.dropped if kind is not None else 0
                kind = _Window(now)
                self._kinds[key] = kind
                self._kinds.move_to_end(key)
                while len(self._kinds) > self.max_kinds:
                    self._kinds.popitem(last=False)
            if kind.passed >= self.burst or self._all.passed >= self.total:
                kind.dropped += 1
                self._all.dropped += 1
                return False
            kind.passed += 1
            self._all.passed += 1
            notes = []
            if earlier:
                notes.append(f"{earlier} more like this in the previous window were not logged")
            if self._all.dropped and self._all.passed == 1:
                notes.append(f"{self._all.dropped} log records in all were dropped before this")
                self._all.dropped = 0
            if kind.passed == self.burst:
                notes.append(f"more like this in the next {self.window:g} s will not be logged")
        if notes:
            record.msg = f"{record.getMessage()} [{'; '.join(notes)}]"
            record.args = None
        return True


class BoundedFormatter(logging.Formatter):
    """A formatter that cuts a record (its traceback included) at ``max_chars`` characters."""

    def __init__(self, fmt: str | None = None, max_chars: int = 16_384) -> None:
        super().__init__(fmt)
        self.max_chars = max_chars

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if len(text) > self.max_chars:
            return text[: self.max_chars] + " … [cut: the record was too long]"
        return text


def log_config(level: str = "WARNING") -> dict[str, Any]:
    """The logging set-up for ``carewall serve``: every logger through one bounded handler.

    uvicorn's loggers propagate to the root logger instead of keeping handlers of their own,
    so the one filter sees (and counts) every record once. carewall's own loggers log at
    INFO (a client disconnecting is one INFO line); everything else at ``level``.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"bounded": {"()": f"{__name__}.RepeatLimitFilter"}},
        "formatters": {
            "plain": {
                "()": f"{__name__}.BoundedFormatter",
                "fmt": "%(levelname)s %(name)s: %(message)s",
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "plain",
                "filters": ["bounded"],
            }
        },
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
            "carewall": {"handlers": [], "level": "INFO", "propagate": True},
        },
        "root": {"handlers": ["stderr"], "level": level},
    }
