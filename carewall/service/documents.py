"""Parsed request documents, the last few kept: a document never changes once received.

A request about 100,000 people is a document of several megabytes that takes ~70 ms to
parse; a release reads it, and its reply reads it again. Keyed by the request id and the
text's length (an id is never reused within one database), and private to one
:class:`~carewall.service.Service`. Callers must not change what they are given.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

__all__ = ["Documents"]


class Documents:
    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._kept: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, request_id: str, text: str) -> dict[str, Any]:
        """The document ``text`` of request ``request_id``, parsed (shared: do not change)."""
        key = (request_id, len(text))
        with self._lock:
            doc = self._kept.get(key)
            if doc is not None:
                self._kept.move_to_end(key)
                return doc
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("a stored request document is not an object")
        if len(text) > 100_000:  # only large documents are worth keeping
            with self._lock:
                self._kept[key] = doc
                while len(self._kept) > self._size:
                    self._kept.popitem(last=False)
        return doc
