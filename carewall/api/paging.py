"""Paging for every list route: ``limit`` and an opaque ``cursor``, the next page linked.

A list answers at most ``limit`` items (default 100, at most 1,000). When more follow, the
response carries ``Link: </api/…?…&cursor=C>; rel="next"`` (RFC 8288, a relative URL that
keeps the caller's filters), and the caller asks for that URL; the last page has no such
link. The body is the same JSON list as ever, so a client that ignores paging still works.

A cursor is the sort key of the last item served (keyset paging), base64url-encoded JSON:
an item added or removed meanwhile neither repeats nor skips another. Clients must treat
it as opaque. A cursor only narrows what the caller may already see, so it needs no MAC.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Final, TypeVar

from fastapi import Query, Request, Response

from carewall.errors import InputError

__all__ = [
    "CURSOR",
    "DEFAULT_LIMIT",
    "LIMIT",
    "MAX_LIMIT",
    "PAGED",
    "decode_cursor",
    "encode_cursor",
    "link_next",
    "page_in_memory",
]

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
_MAX_CURSOR: Final = 1024

LIMIT = Annotated[
    int,
    Query(ge=1, le=MAX_LIMIT, description=f"at most this many items (1 to {MAX_LIMIT})"),
]
CURSOR = Annotated[
    str | None,
    Query(
        max_length=_MAX_CURSOR,
        pattern=r"^[A-Za-z0-9_-]+$",
        description='where to go on from: the cursor in the previous page\'s Link rel="next"',
    ),
]
# Documents the Link header on a list route's 200 response (FastAPI ``responses=``).
PAGED: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": "One page of the list. When more follow, the Link header holds the "
        'next page\'s URL (rel="next"); the last page has none.',
        "headers": {
            "Link": {
                "description": '<URL>; rel="next": the next page, same filters',
                "schema": {"type": "string"},
            }
        },
    }
}

T = TypeVar("T")
Key = tuple[Any, ...]


def encode_cursor(key: Sequence[str | int]) -> str:
    """An opaque cursor for the sort key ``key`` (strings and integers)."""
    raw = json.dumps(list(key), separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None, shape: Sequence[type]) -> Key | None:
    """The sort key in ``cursor`` (None for the first page); a 422 naming ``cursor`` when
    it was not made by :func:`encode_cursor` for a key of these types."""
    if cursor is None:
        return None
    bad = InputError(
        "is not a cursor this list gave out",
        field="cursor",
        fix='follow the Link rel="next" of the previous page, or leave cursor out',
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw.decode("ascii"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(key, list) or len(key) != len(shape):
        raise bad
    for value, kind in zip(key, shape, strict=True):
        # bool is an int in Python; a cursor never holds one
        if type(value) is not kind or (isinstance(value, str) and "\x00" in value):
            raise bad
    return tuple(key)


def page_in_memory(
    items: Sequence[T], key: Callable[[T], Key], limit: int, after: Key | None
) -> tuple[list[T], Key | None]:
    """One page of ``items`` in ``key`` order after the key ``after``; the next cursor's
    key, or None on the last page. For lists read whole (the register, tokens)."""
    ordered = sorted(items, key=key)
    if after is not None:
        ordered = [x for x in ordered if key(x) > after]
    page = ordered[:limit]
    more = len(ordered) > limit
    return page, (key(page[-1]) if more and page else None)


def link_next(request: Request, response: Response, key: Key | None, limit: int) -> None:
    """Set ``Link: <…>; rel="next"`` when there is a next page (relative to this host)."""
    if key is None:
        return
    url = request.url.include_query_params(limit=limit, cursor=encode_cursor(key))
    response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
