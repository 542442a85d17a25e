"""Server-rendered bar charts: accessible, escaped, values as text, no script."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from carewall.web.charts import bar_chart

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & "quotes" \'too\''


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # well-formed XML, or this raises


def test_a_chart_is_an_image_named_and_described_by_its_own_title_and_desc() -> None:
    svg = parse(bar_chart("Requests by purpose", [("research", 3), ("direct_care", 12)], id="p"))
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "p-title p-desc"
    title, desc = svg.find(SVG + "title"), svg.find(SVG + "desc")
    assert title is not None and title.get("id") == "p-title"
    assert title.text == "Requests by purpose"
    assert desc is not None and desc.get("id") == "p-desc"
    assert desc.text == "Bar chart, 2 bars. research: 3; direct_care: 12."


def test_every_label_and_value_is_visible_text_and_bars_are_in_proportion() -> None:
    svg = parse(bar_chart("t", [("police", 1200), ("health", 600), ("none", 0)], id="c"))
    texts = [t.text for t in svg.iter(SVG + "text")]
    assert texts == ["police", "1,200", "health", "600", "none", "0"]
    bars = [r for r in svg.iter(SVG + "rect")]
    assert [r.get("fill") for r in bars] == ["#1d70b8", "#1d70b8"]  # no bar for 0
    widths = [float(r.get("width", "0")) for r in bars]
    assert widths[0] == pytest.approx(2 * widths[1], abs=0.2)
    group = svg.find(SVG + "g")
    assert group is not None and group.get("fill") == "#0b0c0c"


def test_hostile_labels_and_titles_are_escaped() -> None:
    markup = str(bar_chart(HOSTILE, [(HOSTILE, 1)], id="h"))
    assert "<script" not in markup
    svg = parse(markup)
    title = svg.find(SVG + "title")
    assert title is not None and title.text == HOSTILE
    assert "<script" in "".join(t.text or "" for t in svg.iter(SVG + "text"))  # as text only


def test_no_script_and_no_event_handlers() -> None:
    markup = str(bar_chart("t", [("a", 1)], id="s")).lower()
    assert "<script" not in markup and "onload" not in markup and "javascript:" not in markup


def test_an_empty_chart_says_so() -> None:
    svg = parse(bar_chart("Requests by month", [], id="m"))
    assert [t.text for t in svg.iter(SVG + "text")] == ["No figures yet."]
    desc = svg.find(SVG + "desc")
    assert desc is not None and desc.text == "Requests by month: no figures yet."


def test_a_long_list_is_described_in_part_and_long_labels_are_cut() -> None:
    rows = [(f"organisation-with-a-very-long-name-{i:02d}", i + 1) for i in range(30)]
    svg = parse(bar_chart("Requests by holder", rows, id="l"))
    desc = svg.find(SVG + "desc")
    assert desc is not None and desc.text is not None
    assert desc.text.endswith("; and 10 more, listed in the table.")
    assert all(len(t.text or "") <= 28 for t in svg.iter(SVG + "text"))


@pytest.mark.parametrize("bad_id", ["", "1abc", "a b", 'x"onload="1', "a/b"])
def test_an_unsafe_id_is_refused(bad_id: str) -> None:
    with pytest.raises(ValueError):
        bar_chart("t", [("a", 1)], id=bad_id)


@pytest.mark.parametrize("count", [-1, True, 1.5])
def test_a_count_that_is_not_a_whole_number_is_refused(count: object) -> None:
    with pytest.raises(ValueError):
        bar_chart("t", [("a", count)], id="c")  # type: ignore[list-item]
