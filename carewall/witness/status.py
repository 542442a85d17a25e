"""Who witnesses this log, and who is behind: for ``/log/witnesses`` and the public pages.

A witness is *behind* when it has not cosigned the newest signed checkpoint: it may be down,
slow, or (with an error such as HTTP 422 or "beyond this log's size") holding another view.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import APIRouter, Response

from carewall.ledger import Ledger
from carewall.ledger.publisher import latest
from carewall.witness import store
from carewall.witness.config import AskedWitness

__all__ = ["WitnessRow", "make_witnesses_router", "witness_rows"]


@dataclass(frozen=True)
class WitnessRow:
    name: str
    vkey: str
    url: str
    cosigned_size: int | None  # the largest checkpoint of this log it cosigned
    behind: bool
    error: str | None


def witness_rows(ledger: Ledger, witnesses: Sequence[AskedWitness]) -> tuple[int, list[WitnessRow]]:
    """The newest checkpoint's size and each witness's standing against it."""
    with ledger.store.read() as conn:
        newest = latest(conn)
        known = store.statuses(conn) if witnesses else {}
    size = 0 if newest is None else newest[0]
    rows = []
    for w in witnesses:
        st = known.get(w.name)
        cosigned = None if st is None else st.cosigned_size
        rows.append(
            WitnessRow(
                name=w.name,
                vkey=w.key.vkey(),
                url=w.url,
                cosigned_size=cosigned,
                behind=cosigned != size,
                error=None if st is None else st.error,
            )
        )
    return size, rows


def make_witnesses_router(
    get_ledger: Callable[[], Ledger], witnesses: Sequence[AskedWitness]
) -> APIRouter:
    """``GET /log/witnesses``: JSON, each witness's key and whether it is behind."""
    router = APIRouter(prefix="/log", tags=["log"])

    @router.get("/witnesses")
    def witnesses_doc(response: Response) -> dict[str, Any]:
        size, rows = witness_rows(get_ledger(), witnesses)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["Access-Control-Allow-Origin"] = "*"
        return {"size": size, "witnesses": [asdict(r) for r in rows]}

    return router
