"""Accessible horizontal bar charts as inline SVG, rendered on the server (no JavaScript).

Each chart is an ``<svg role="img">`` named by its ``<title>`` and described by its
``<desc>`` (``aria-labelledby``), which lists the figures in words, so the chart means the
same read aloud. Every bar carries its label and its value as visible text: colour is never
the only carrier. GOV.UK colours (``#1d70b8`` bars, ``#0b0c0c`` text), and every label is
escaped, since a label may come from a log that anyone can write to through an instance.
The page puts the same figures in a table beside the chart (WCAG 1.1.1, 1.4.1).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from markupsafe import Markup, escape

__all__ = ["bar_chart"]

BAR = "#1d70b8"  # GOV.UK blue
TEXT = "#0b0c0c"  # GOV.UK black
WIDTH = 640
ROW = 32  # px per bar, at a 16 px font
BAR_HEIGHT = 20
CHAR = 8.5  # average width of a character at 16 px, for sizing the label column
MAX_LABEL = 28  # characters shown before a label is cut (the table holds it whole)
MAX_DESCRIBED = 20  # bars read out in the description before "and N more"
_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}", re.ASCII)
_FONT = '"GDS Transport", arial, sans-serif'


def _label(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _describe(title: str, rows: Sequence[tuple[str, int]]) -> str:
    if not rows:
        return f"{title}: no figures yet."
    parts = [f"{label}: {value:,}" for label, value in rows[:MAX_DESCRIBED]]
    more = len(rows) - MAX_DESCRIBED
    tail = f"; and {more:,} more, listed in the table" if more > 0 else ""
    bars = "bar" if len(rows) == 1 else "bars"
    return f"Bar chart, {len(rows):,} {bars}. " + "; ".join(parts) + tail + "."


def bar_chart(title: str, rows: Sequence[tuple[str, int]], *, id: str) -> Markup:
    """An inline SVG bar chart of ``rows`` (label, count ≥ 0), one bar each, in the given order.

    ``id`` (letters, digits, ``-`` and ``_``, starting with a letter) prefixes the ids of the
    title and description, so it must be unique on the page; ValueError otherwise, or for a
    negative count.
    """
    if not _ID.fullmatch(id):
        raise ValueError("the chart id must be a letter then letters, digits, '-' or '_'")
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for _, n in rows):
        raise ValueError("every count must be a whole number ≥ 0")
    labels = [_label(str(label)) for label, _ in rows]
    values = [f"{n:,}" for _, n in rows]
    label_w = min(max((len(s) for s in labels), default=8) * CHAR + 12, WIDTH * 0.45)
    value_w = max((len(v) for v in values), default=1) * CHAR + 12
    area = WIDTH - label_w - value_w
    top = max((n for _, n in rows), default=0) or 1
    height = max(len(rows), 1) * ROW + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cw-chart" role="img" '
        f'aria-labelledby="{id}-title {id}-desc" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" style="max-width:{WIDTH}px" focusable="false">',
        f'<title id="{id}-title">{escape(title)}</title>',
        f'<desc id="{id}-desc">{escape(_describe(title, rows))}</desc>',
        f'<g font-family=\'{_FONT}\' font-size="16" fill="{TEXT}">',
    ]
    if not rows:
        parts.append(f'<text x="0" y="{ROW - 10}">No figures yet.</text>')
    for i, ((_, n), label, value) in enumerate(zip(rows, labels, values, strict=True)):
        y = i * ROW + 4
        baseline = y + BAR_HEIGHT - 5
        w = round(area * n / top, 1)
        parts.append(
            f'<text x="{label_w - 8:.1f}" y="{baseline}" text-anchor="end">{escape(label)}</text>'
        )
        if w > 0:
            parts.append(
                f'<rect x="{label_w:.1f}" y="{y}" width="{w}" height="{BAR_HEIGHT}" fill="{BAR}"/>'
            )
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{baseline}">{escape(value)}</text>')
    parts.append("</g></svg>")
    return Markup("".join(parts))
