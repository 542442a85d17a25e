"""``/statistics.json`` and ``/statistics.csv``: the public statistics as downloads.

Every figure is computed from the public log alone (:mod:`carewall.statistics`) and names
the checkpoint it covers: the latest signed one, or ``?size=N`` for an earlier size (1 to
the latest signed size). ``carewall audit`` fetches ``/statistics.json?size=N`` for the
checkpoint it verified and fails if it differs from what it computes from the log itself.
Both answer cross-origin reads, like ``/log/``, so anyone's page or script can check them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from carewall.errors import InputError
from carewall.service import Service
from carewall.service.statistics import statistics_at
from carewall.statistics import AGREEMENT_FIGURES, DIMENSIONS, FIGURES, OUTCOMES, Statistics

__all__ = ["router", "statistics_schema"]

router = APIRouter(tags=["public"])

_DIGITS = re.compile(r"[0-9]{1,40}", re.ASCII)
_LATEST = "public, max-age=10"  # the latest checkpoint moves on as the log grows
_FIXED = "public, max-age=31536000, immutable"  # the log is append-only: a size never changes
_SIZE_FIX = "give a whole number from 1 to the latest signed checkpoint's size, or leave it out"

SizeParam = Annotated[
    str | None,
    Query(
        max_length=40,
        description="the checkpoint size to cover, 1 to the latest signed size (default: latest)",
        examples=["42"],
    ),
]


class CSVResponse(Response):
    media_type = "text/csv"


def _count() -> dict[str, Any]:
    return {"type": "integer", "minimum": 0}


def statistics_schema() -> dict[str, Any]:
    """The JSON Schema of ``/statistics.json`` (version 1)."""
    row = {
        "type": "object",
        "additionalProperties": False,
        "required": ["key", "count"],
        "properties": {"key": {"type": "string"}, "count": _count()},
    }
    tables = {d: {"type": "array", "items": row} for d in DIMENSIONS}
    tables["outcome"] = {
        "type": "array",
        "items": {**row, "properties": {"key": {"enum": list(OUTCOMES)}, "count": _count()}},
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["v", "origin", "size", "firewall", "tables", "agreements"],
        "properties": {
            "v": {"const": 1},
            "origin": {"type": "string"},
            "size": _count(),
            "firewall": {
                "type": "object",
                "additionalProperties": False,
                "required": list(FIGURES),
                "properties": {f: _count() for f in FIGURES},
            },
            "tables": {
                "type": "object",
                "additionalProperties": False,
                "required": list(DIMENSIONS),
                "properties": tables,
            },
            "agreements": {
                "type": "object",
                "additionalProperties": False,
                "required": list(AGREEMENT_FIGURES),
                "properties": {f: _count() for f in AGREEMENT_FIGURES},
            },
        },
    }


def _size(text: str | None) -> int | None:
    """The ``size`` parameter: ASCII digits only (no sign, space or ``_``), else a 422."""
    if text is None:
        return None
    if not _DIGITS.fullmatch(text):
        raise InputError("must be a whole number, written in digits", field="size", fix=_SIZE_FIX)
    return int(text)


def _statistics(request: Request, size: str | None) -> tuple[Statistics, dict[str, str]]:
    service: Service = request.app.state.service
    asked = _size(size)
    stats = statistics_at(service, asked)
    headers = {
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Cache-Control": _LATEST if asked is None else _FIXED,
    }
    return stats, headers


@router.get(
    "/statistics.json",
    summary="Public statistics computed from the log alone, for one signed checkpoint",
    response_class=JSONResponse,
    responses={200: {"content": {"application/json": {"schema": statistics_schema()}}}},
)
def statistics_json(request: Request, size: SizeParam = None) -> JSONResponse:
    stats, headers = _statistics(request, size)
    return JSONResponse(stats.to_json(), headers=headers)


@router.get(
    "/statistics.csv",
    summary="The same statistics as CSV: origin, size, dimension, key, count",
    response_class=CSVResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def statistics_csv(request: Request, size: SizeParam = None) -> CSVResponse:
    stats, headers = _statistics(request, size)
    name = f"carewall-statistics-{stats.size}.csv"
    headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return CSVResponse(stats.to_csv(), headers=headers)
