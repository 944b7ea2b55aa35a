"""The SVG chart builders, pure: the output is well-formed XML, bars are proportional to the
data, no data is said so, and labels are escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.web.charts import (
    Chart,
    bar_chart,
    box_chart,
    duration,
    number,
    stacked_bar_chart,
)

SVG = "{http://www.w3.org/2000/svg}"


def parsed(chart: Chart) -> ET.Element:
    root = ET.fromstring(str(chart.svg))
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img" and root.get("aria-label")
    assert root.find(f"{SVG}title") is not None
    return root


def bars_of(root: ET.Element) -> list[tuple[str, float]]:
    """(mark title, width) of every data rect (those carrying a <title>)."""
    found = []
    for rect in root.iter(f"{SVG}rect"):
        title = rect.find(f"{SVG}title")
        if title is not None:
            found.append((title.text or "", float(rect.get("width", "0"))))
    return found


def test_bar_lengths_are_proportional_to_the_values() -> None:
    chart = bar_chart("Open records by state", [("triage", 4), ("containment", 2),
                                                ("investigation", 1)], column="records")
    widths = dict(bars_of(parsed(chart)))
    assert widths["triage: 4"] == pytest.approx(2 * widths["containment: 2"], abs=0.2)
    assert widths["containment: 2"] == pytest.approx(2 * widths["investigation: 1"], abs=0.2)
    assert chart.columns == ("", "records")
    assert chart.rows == (("triage", "4"), ("containment", "2"), ("investigation", "1"))


@given(st.lists(st.tuples(st.text(min_size=1, max_size=20),
                          st.integers(min_value=0, max_value=10**6)), min_size=1, max_size=12))
def test_any_bars_parse_and_the_longest_is_the_largest(bars: list[tuple[str, int]]) -> None:
    chart = bar_chart("any", [(label, float(v)) for label, v in bars])
    widths = [w for _, w in bars_of(parsed(chart))]
    largest = max(v for _, v in bars)
    if largest == 0:  # all zero: the "no data" figure
        assert widths == []
        return
    assert len(widths) == len(bars)
    longest = widths[[v for _, v in bars].index(largest)]
    for (_, v), width in zip(bars, widths, strict=True):
        assert width == pytest.approx(longest * v / largest, abs=0.2)


@pytest.mark.parametrize("chart", [
    bar_chart("Open records by state", []),
    bar_chart("CAPA actions", [("overdue", 0.0), ("done late", 0.0)]),
    stacked_bar_chart("Open records by age", ["under 1 day"], [("triage", [0.0])]),
    stacked_bar_chart("Open records by age", [], []),
    box_chart("Time to close", [("2026-03", [])]),
], ids=["bar", "bar-zero", "stacked-zero", "stacked-empty", "box"])
def test_no_data_is_an_explicit_figure(chart: Chart) -> None:
    root = parsed(chart)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts == ["No data"]
    assert (root.get("aria-label") or "").endswith(": no data")
    assert bars_of(root) == []


def test_labels_and_titles_are_escaped() -> None:
    hostile = '<script>alert("x")</script> & co'
    chart = bar_chart(hostile, [(hostile, 1.0)])
    text = str(chart.svg)
    assert "<script>" not in text
    root = parsed(chart)
    assert root.get("aria-label") == hostile
    assert [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "label"] == [hostile]


def test_stacked_segments_add_up_to_the_category_and_the_legend_names_each_series() -> None:
    chart = stacked_bar_chart("Open records by age", ["under 1 day", "1-7 days"],
                              [("triage", [2.0, 1.0]), ("containment", [1.0, 0.0])])
    root = parsed(chart)
    widths = dict(bars_of(root))
    assert set(widths) == {"under 1 day, triage: 2", "under 1 day, containment: 1",
                           "1-7 days, triage: 1"}  # a zero segment draws nothing
    full = widths["under 1 day, triage: 2"] + widths["under 1 day, containment: 1"]
    assert full == pytest.approx(3 * widths["1-7 days, triage: 1"], abs=0.3)
    legend = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "legend"]
    assert legend == ["triage", "containment"]
    assert chart.rows == (("under 1 day", "2", "1", "3"), ("1-7 days", "1", "0", "1"))


def test_a_box_spans_the_quartiles_and_marks_the_median() -> None:
    values = [10.0, 20.0, 30.0, 40.0, 100.0]
    chart = box_chart("Time to contain", [("2026-03", values)], fmt=number)
    assert chart.rows == (("2026-03", "5", "10", "20", "30", "40", "100"),)
    root = parsed(chart)
    box = root.find(f".//{SVG}g[@class='box']")
    assert box is not None
    whisker, median = box.findall(f"{SVG}line")
    rect = box.find(f"{SVG}rect")
    assert rect is not None
    left = float(whisker.get("x1", "0"))
    scale = (float(whisker.get("x2", "0")) - left) / (100 - 10)  # min..max
    assert float(rect.get("x", "0")) == pytest.approx(left + (20 - 10) * scale, abs=0.2)
    assert float(rect.get("width", "0")) == pytest.approx((40 - 20) * scale, abs=0.2)
    assert float(median.get("x1", "0")) == pytest.approx(left + (30 - 10) * scale, abs=0.2)


@pytest.mark.parametrize(("seconds", "text"), [
    (45, "45 s"), (60, "1 min"), (720, "12 min"), (3 * 3600 + 1800, "3.5 h"),
    (2 * 86400, "2.0 d"),
])
def test_durations_read_in_the_unit_a_reader_expects(seconds: float, text: str) -> None:
    assert duration(seconds) == text
