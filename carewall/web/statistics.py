"""``/statistics``: the public statistics as charts with their tables, and the downloads.

Every figure comes from :func:`carewall.service.statistics.statistics_at`, which reads the
public log alone up to the latest signed checkpoint; ``carewall audit`` recomputes the same
document from the log it verified and fails if ``/statistics.json`` differs. The download
links name the checkpoint size, so what a reader downloads is what the page shows.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from carewall import labels
from carewall.deadlines import AGREEMENT_END_GRACE_DAYS
from carewall.service import Service
from carewall.service.statistics import statistics_at
from carewall.statistics import DIMENSIONS
from carewall.web.charts import bar_chart
from carewall.web.templating import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_KIND = {
    "requester_function": "function",
    "purpose": "purpose",
    "legal_basis": "legal_basis",
    "outcome": "statistic_outcome",
}


def _month(key: str) -> str:
    try:
        return date.fromisoformat(key + "-01").strftime("%B %Y")
    except ValueError:
        return key


def _shown(dimension: str, key: str, names: dict[str, str]) -> str:
    if dimension == "month":
        return _month(key)
    if dimension == "holder":
        return names.get(key, key)  # the register is public: its names are too
    return labels.label(_KIND[dimension], key)


@router.get("/statistics", response_class=HTMLResponse)
def statistics_page(request: Request) -> HTMLResponse:
    service: Service = request.app.state.service
    stats = statistics_at(service, None)
    names = {o.id: o.name for o in service.register().organisations.values()}
    sections: list[dict[str, Any]] = []
    for dimension in DIMENSIONS:
        rows = [(_shown(dimension, k, names), n) for k, n in stats.table(dimension)]
        title = labels.label("dimension", dimension)
        sections.append(
            {
                "id": dimension.replace("_", "-"),
                "title": title,
                "sentence": labels.sentence("dimension", dimension),
                "chart": bar_chart(f"{title}: number of requests", rows, id=f"chart-{dimension}"),
                "rows": rows,
            }
        )
    return render(
        request,
        "statistics.html",
        {
            "title": "Statistics",
            "stats": stats,
            "sections": sections,
            "end_grace_days": AGREEMENT_END_GRACE_DAYS,
        },
    )
