"""Charts as inline SVG drawn on the server: bar, box (distribution) and stacked bar.

The workspace's Content-Security-Policy allows no script and no inline style, and the plant
network has no CDN, so a chart is markup this module builds: colours are SVG presentation
attributes (``fill=``), not ``style=``. Every chart is a `Chart`: the SVG (``role="img"``, an
``aria-label`` and a ``<title>``; each mark has its own ``<title>``) and the same figures as a
table, which the page prints beside it for screen readers and for paper. No data gives an
explicit "no data" figure, never an empty box.

Example::

    >>> chart = bar_chart("Open records by state", [("triage", 3), ("containment", 1)])
    >>> chart.rows
    (('triage', '3'), ('containment', '1'))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import quantiles

from markupsafe import Markup

#: Fill colours, one per series (distinguishable in grey on paper too).
PALETTE = ("#1f5f8b", "#d08c2f", "#4f8a3c", "#9b3b5a", "#6b6b6b", "#2f9e9e", "#8a6d3b")
LABEL_W, PLOT_W, ROW_H, PAD = 170, 420, 26, 8
WIDTH = LABEL_W + PLOT_W + 90
Format = Callable[[float], str]
#: Characters XML 1.0 does not allow (a tag name from a controller may hold any of them).
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Chart:
    """An SVG figure and its data as a table (``columns``, then one row per mark)."""

    title: str
    svg: Markup
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def number(value: float) -> str:
    """A count or a percentage as people write it: no trailing ``.0``."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def duration(seconds: float) -> str:
    """Seconds in the unit a reader expects: ``45 s``, ``12 min``, ``3.5 h``, ``2.0 d``."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}" if unit != "min" else f"{seconds / size:.0f} min"
    return f"{seconds:.0f} s"


def bar_chart(title: str, bars: Sequence[tuple[str, float]], *, fmt: Format = number,
              column: str = "value") -> Chart:
    """One horizontal bar per ``(label, value)``, lengths proportional to the values (all
    zero is no data: there is nothing to compare)."""
    rows = tuple((label, fmt(v)) for label, v in bars)
    if not any(v for _, v in bars):
        return Chart(title, _no_data(title), ("", column), rows)
    top = max(max(v for _, v in bars), 0.0)
    marks = [_row_label(i, label)
             + _rect(i, 0.0, _scale(v, top), PALETTE[0], f"{label}: {fmt(v)}")
             + _row_value(i, _scale(v, top), fmt(v)) for i, (label, v) in enumerate(bars)]
    return Chart(title, _svg(title, len(bars), Markup("").join(marks)), ("", column), rows)


def stacked_bar_chart(title: str, categories: Sequence[str],
                      series: Sequence[tuple[str, Sequence[float]]], *,
                      fmt: Format = number) -> Chart:
    """One bar per category, split into one segment per series (``series[k][1][i]`` is the
    segment of series ``k`` in category ``i``), with a legend below."""
    columns = ("", *(name for name, _ in series), "total")
    totals = [sum(values[i] for _, values in series) for i in range(len(categories))]
    rows = tuple((c, *(fmt(values[i]) for _, values in series), fmt(totals[i]))
                 for i, c in enumerate(categories))
    if not categories or not any(totals):
        return Chart(title, _no_data(title), columns, rows)
    top, marks = max(totals), []
    for i, category in enumerate(categories):
        marks.append(_row_label(i, category))
        start = 0.0
        for k, (name, values) in enumerate(series):
            width = _scale(values[i], top)
            if values[i]:
                marks.append(_rect(i, start, width, PALETTE[k % len(PALETTE)],
                                   f"{category}, {name}: {fmt(values[i])}"))
            start += width
        marks.append(_row_value(i, start, fmt(totals[i])))
    legend = _legend([name for name, _ in series], len(categories))
    return Chart(title, _svg(title, len(categories) + 1, Markup("").join([*marks, legend])),
                 columns, rows)


def box_chart(title: str, groups: Sequence[tuple[str, Sequence[float]]], *,
              fmt: Format = number) -> Chart:
    """A distribution per group: whiskers from min to max, a box from the first to the third
    quartile, a line at the median; groups without values are left out."""
    groups = [(label, sorted(values)) for label, values in groups if values]
    columns = ("", "n", "min", "q1", "median", "q3", "max")
    stats = [(label, _five(values), len(values)) for label, values in groups]
    rows = tuple((label, str(n), *(fmt(v) for v in five)) for label, five, n in stats)
    if not groups:
        return Chart(title, _no_data(title), columns, rows)
    top, marks = max(five[-1] for _, five, _ in stats), []
    for i, (label, (low, q1, mid, q3, high), n) in enumerate(stats):
        y = PAD + i * ROW_H + ROW_H / 2
        what = f"{label}: n={n}, median {fmt(mid)} (q1 {fmt(q1)}, q3 {fmt(q3)}, " \
               f"min {fmt(low)}, max {fmt(high)})"
        marks.append(_row_label(i, label) + Markup(
            '<g class="box"><title>{}</title>'
            '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#333"/>'
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" stroke="#333"/>'
            '<line class="median" x1="{}" x2="{}" y1="{}" y2="{}" stroke="#000" '
            'stroke-width="3"/></g>').format(
                what, _x(low, top), _x(high, top), _f(y), _f(y),
                _x(q1, top), _f(y - 8), _f(_scale(q3, top) - _scale(q1, top)), 16, PALETTE[0],
                _x(mid, top), _x(mid, top), _f(y - 10), _f(y + 10))
            + _row_value(i, _scale(high, top), f"median {fmt(mid)}"))
    return Chart(title, _svg(title, len(stats), Markup("").join(marks)), columns, rows)


def _five(values: Sequence[float]) -> tuple[float, float, float, float, float]:
    if len(values) == 1:
        return (values[0],) * 5
    q1, mid, q3 = quantiles(values, n=4, method="inclusive")
    return values[0], q1, mid, q3, values[-1]


def _scale(value: float, top: float) -> float:
    return PLOT_W * value / top if top > 0 else 0.0


def _x(value: float, top: float) -> str:
    return _f(LABEL_W + _scale(value, top))


def _f(coordinate: float) -> str:
    return f"{coordinate:.1f}"


def _rect(row: int, start: float, width: float, fill: str, what: str) -> Markup:
    return Markup('<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title>'
                  '</rect>').format(_f(LABEL_W + start), PAD + row * ROW_H + 4, _f(width),
                                    ROW_H - 8, fill, what)


def _row_label(row: int, label: str) -> Markup:
    return Markup('<text x="{}" y="{}" text-anchor="end" class="label">{}</text>').format(
        LABEL_W - 6, PAD + row * ROW_H + ROW_H - 9, label)


def _row_value(row: int, end: float, text: str) -> Markup:
    return Markup('<text x="{}" y="{}" class="value">{}</text>').format(
        _f(LABEL_W + end + 4), PAD + row * ROW_H + ROW_H - 9, text)


def _legend(names: Sequence[str], row: int) -> Markup:
    y, parts, x = PAD + row * ROW_H + 6, [], float(LABEL_W)
    for k, name in enumerate(names):
        parts.append(Markup('<rect x="{}" y="{}" width="12" height="12" fill="{}"/>'
                            '<text x="{}" y="{}" class="legend">{}</text>').format(
            _f(x), y, PALETTE[k % len(PALETTE)], _f(x + 16), y + 11, name))
        x += 24 + 7 * len(name)
    return Markup('<g class="legend">{}</g>').format(Markup("").join(parts))


def _xml(svg: Markup) -> Markup:
    """The SVG with characters XML cannot hold replaced by U+FFFD (it must parse as XML)."""
    return Markup(NOT_XML.sub("\ufffd", svg))


def _svg(title: str, rows: int, body: Markup) -> Markup:
    height = 2 * PAD + rows * ROW_H
    return _xml(Markup('<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
                  'aria-label="{}" viewBox="0 0 {} {}" width="{}" height="{}" '
                  'font-family="DejaVu Sans, sans-serif" font-size="12"><title>{}</title>'
                  '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#999"/>{}</svg>').format(
        title, WIDTH, height, WIDTH, height, title, LABEL_W, LABEL_W, PAD, height - PAD, body))


def _no_data(title: str) -> Markup:
    return _xml(Markup('<svg xmlns="http://www.w3.org/2000/svg" class="chart no-data" role="img" '
                  'aria-label="{}: no data" viewBox="0 0 {} 60" width="{}" height="60" '
                  'font-family="DejaVu Sans, sans-serif" font-size="14"><title>{}: no data'
                  '</title><rect x="1" y="1" width="{}" height="58" fill="none" stroke="#999" '
                  'stroke-dasharray="4 4"/><text x="{}" y="35" text-anchor="middle">No data'
                  '</text></svg>').format(title, WIDTH, WIDTH, title, WIDTH - 2, WIDTH // 2))


__all__ = ["Chart", "bar_chart", "box_chart", "duration", "number",
           "stacked_bar_chart"]
