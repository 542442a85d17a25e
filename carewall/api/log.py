"""Read-only HTTP routes of the transparency log, mounted under ``/log``.

- ``checkpoint``: the latest C2SP signed checkpoint (https://c2sp.org/tlog-checkpoint).
- ``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``: C2SP tlog-tiles
  (https://c2sp.org/tlog-tiles). A full tile never changes, so it is served as immutable; a
  partial tile is superseded as the log grows, so it is cached briefly.
- ``key``: the verifier key, ``name+hex8+base64`` (https://c2sp.org/signed-note).
- JSON ``proof/inclusion``, ``proof/consistency`` (RFC 9162 §2.1.3, §2.1.4) and ``entries``.
- ``schema``: the exact shape of every entry kind, as one JSON Schema 2020-12 document
  (:func:`carewall.entry_schema.entry_schema`, contract §6).

Every route reads through the ledger handed in by ``get_ledger``, which MUST be a read-only
ledger: serving never takes the writer's lock and never extends the tree.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from carewall.entry_schema import entry_schema
from carewall.errors import CarewallError, LedgerError, NotFoundError, StorageError
from carewall.ledger import Ledger
from carewall.ledger.proof_docs import consistency_doc, inclusion_doc
from carewall.ledger.tiles import entries_path, parse_tile_path, tile_path

__all__ = ["MAX_ENTRIES", "TILE_WIDTH", "make_log_router"]

TILE_WIDTH = 256
MAX_ENTRIES = 1000

_IMMUTABLE = "public, max-age=31536000, immutable"
_SHORT = "public, max-age=10"
_TEXT = "text/plain; charset=utf-8"
_OCTETS = "application/octet-stream"
_SCHEMA = "application/schema+json"

NonNegative = Annotated[int, Query(ge=0)]


def _check_size(ledger: Ledger, size: int, field: str) -> None:
    current = ledger.size()
    if size > current:
        raise LedgerError(
            f"size {size} is beyond the log's size {current}",
            field=field,
            fix="use a size from a checkpoint the log has published",
        )


def _tile_available(count: int, n: int, width: int | None) -> bool:
    """Whether tile ``n`` (full when ``width`` is None) exists among ``count`` hashes."""
    w = TILE_WIDTH if width is None else width
    return n * TILE_WIDTH + w <= count


def _parse_tile(path: str) -> tuple[int | Literal["entries"], int, int | None]:
    """Parse a tile path, accepting only its one canonical spelling (no ``x000/`` groups)."""
    full = "tile/" + path
    try:
        level, n, width = parse_tile_path(full)
        canon = entries_path(n, width) if level == "entries" else tile_path(level, n, width)
    except CarewallError as e:
        raise LedgerError(
            "malformed tile path",
            field="path",
            fix="use tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>] (C2SP tlog-tiles)",
        ) from e
    if canon != full:
        raise LedgerError(
            "malformed tile path: N must be written in its shortest x-grouped form",
            field="path",
            fix="e.g. tile/0/x001/x234/067 for tile 1234067",
        )
    return level, n, width


@cache
def _schema_body() -> bytes:
    return json.dumps(entry_schema(), indent=2, ensure_ascii=False).encode() + b"\n"


def make_log_router(
    get_ledger: Callable[[], Ledger], cosigned: Callable[[Ledger], str] | None = None
) -> APIRouter:
    """The ``/log`` router; ``get_ledger`` returns a read-only :class:`Ledger` per request.

    ``cosigned`` turns the ledger into the newest checkpoint with the witnesses'
    cosignatures collected so far (C2SP tlog-cosignature lines appended to the note).
    """
    router = APIRouter(prefix="/log", tags=["log"])

    @router.get("/checkpoint", response_class=Response)
    def checkpoint() -> Response:
        ledger = get_ledger()
        note = ledger.checkpoint() if cosigned is None else cosigned(ledger)
        return Response(note, media_type=_TEXT, headers={"Cache-Control": "no-cache"})

    @router.get("/key", response_class=Response)
    def key() -> Response:
        vkey = get_ledger().verifier_key
        return Response(vkey + "\n", media_type=_TEXT, headers={"Cache-Control": "no-cache"})

    @router.get("/schema", response_class=Response)
    def schema() -> Response:
        # The shapes change only with the package, so the body is built once.
        return Response(
            _schema_body(),
            media_type=_SCHEMA,
            headers={"Cache-Control": _SHORT, "Access-Control-Allow-Origin": "*"},
        )

    @router.get("/tile/{path:path}", response_class=Response)
    def tile(path: str) -> Response:
        level, n, width = _parse_tile(path)
        ledger = get_ledger()
        size = ledger.size()
        if level == "entries":
            if not _tile_available(size, n, width):
                raise NotFoundError("no such entry bundle in this log", field="path")
            body = ledger.entry_bundle(n, width)
        else:
            if not _tile_available(size >> (8 * level), n, width):
                raise NotFoundError("no such tile in this log", field="path")
            body = ledger.tile(level, n, width)
        cache = _IMMUTABLE if width is None else _SHORT
        return Response(body, media_type=_OCTETS, headers={"Cache-Control": cache})

    @router.get("/proof/inclusion")
    def inclusion(index: NonNegative, size: NonNegative, response: Response) -> dict[str, Any]:
        ledger = get_ledger()
        _check_size(ledger, size, "size")
        if index >= size:
            raise LedgerError(
                f"index {index} is not below size {size}",
                field="index",
                fix="ask for an index smaller than the tree size",
            )
        doc = inclusion_doc(ledger, index, size)
        response.headers["Cache-Control"] = _SHORT
        return doc

    @router.get("/proof/consistency")
    def consistency(
        size: NonNegative,
        response: Response,
        from_: Annotated[int, Query(alias="from", ge=1)],
    ) -> dict[str, Any]:
        ledger = get_ledger()
        _check_size(ledger, size, "size")
        if from_ > size:
            raise LedgerError(
                f"from {from_} is beyond size {size}",
                field="from",
                fix="ask for from ≤ size",
            )
        doc = consistency_doc(ledger, from_, size)
        response.headers["Cache-Control"] = _SHORT
        return doc

    @router.get("/entries")
    def entries(start: NonNegative, end: NonNegative, response: Response) -> dict[str, Any]:
        ledger = get_ledger()
        if end < start:
            raise LedgerError("end is before start", field="end", fix="ask for start ≤ end")
        if end - start > MAX_ENTRIES:
            raise LedgerError(
                f"at most {MAX_ENTRIES} entries per request",
                field="end",
                fix=f"ask for end ≤ start + {MAX_ENTRIES}, or fetch tile/entries bundles",
            )
        _check_size(ledger, end, "end")
        out: list[Any] = []
        for i, data in enumerate(ledger.entries(start, end), start):
            try:
                out.append(json.loads(data))
            except ValueError as e:
                raise StorageError(
                    f"stored entry {i} is not JSON",
                    fix="run `carewall ledger verify` on the server",
                ) from e
        response.headers["Cache-Control"] = _SHORT
        return {"start": start, "end": end, "entries": out}

    return router
