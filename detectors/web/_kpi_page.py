"""``GET /kpis``: the KPIs of `detectors.records.kpis` as charts (inline SVG, `charts`), each
with its figures in a table beside it; the headline numbers are those of ``GET /api/kpis``."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from detectors.records import RecordStore
from detectors.records.kpis import KpiBreakdown, breakdown, compute
from detectors.records.models import Kpis
from detectors.web import charts
from detectors.web._keys import PARTS
from detectors.web._pages import viewer_of
from detectors.web.templating import render


def _read(store: RecordStore, now: datetime) -> tuple[Kpis, KpiBreakdown]:
    entries = store.trail()  # one read for both: the headline and the charts agree
    return compute(entries, now), breakdown(entries, now)


def kpi_charts(found: KpiBreakdown) -> list[charts.Chart]:
    """The page's charts, in reading order."""
    duration = charts.duration
    months = sorted(found.recurrence)
    return [
        charts.box_chart("Time to detect, by month of the record's creation",
                         list(found.time_to_detect.items()), fmt=duration),
        charts.box_chart("Time to contain, by month contained",
                         list(found.time_to_contain.items()), fmt=duration),
        charts.box_chart("Time to close, by month closed",
                         list(found.time_to_close.items()), fmt=duration),
        charts.stacked_bar_chart(
            "Records closed after corrective action, and whether the change recurred",
            months, [("did not recur", [float(found.recurrence[m][0] - found.recurrence[m][1])
                                        for m in months]),
                     ("recurred", [float(found.recurrence[m][1]) for m in months])]),
        charts.bar_chart("CAPA actions by their original due date",
                         [(k, float(v)) for k, v in found.actions.items()], column="actions"),
        charts.bar_chart("Open records by state",
                         [(k, float(v)) for k, v in found.open_by_state.items()],
                         column="records"),
        _open_by_age(found),
    ]


def _open_by_age(found: KpiBreakdown) -> charts.Chart:
    buckets = list(found.open_by_age)
    states = sorted({s for by_state in found.open_by_age.values() for s in by_state})
    return charts.stacked_bar_chart(
        "Open records by age", buckets,
        [(s, [float(found.open_by_age[b].get(s, 0)) for b in buckets]) for s in states])


async def kpi_page(request: web.Request) -> web.Response:
    parts = request.app[PARTS]
    now = parts.clock()
    headline, found = await parts.gate.run(lambda s: _read(s, now))
    text = render("kpi.html", kpis=headline, charts=kpi_charts(found), now=now,
                  duration=charts.duration, viewer=viewer_of(request))
    return web.Response(text=text, content_type="text/html")
