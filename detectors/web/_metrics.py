"""The records service's ``/metrics``: its requests, its build, and the records themselves
(KPIs, open records by state, overdue actions; `detectors.records.metrics`), for Prometheus.

Public, like ``/healthz``: counts only, no record content. Put the service behind a proxy
that keeps ``/metrics`` to the monitoring network where that matters.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from detectors.records.metrics import kpi_families, record_families
from detectors.web._gate import StoreNotReady
from detectors.web._keys import PARTS

REQUESTS = Counter(
    "otwatch_records_http_requests_total",
    "Requests to the records service, by method, route and status", ["method", "route", "status"],
)


class _Snapshot(Collector):
    """Families computed before the scrape (the store is read on its own thread)."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self._families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self._families


async def metrics(request: web.Request) -> web.Response:
    parts = request.app[PARTS]
    now = parts.clock()
    families: list[GaugeMetricFamily] = []
    try:
        kpis = await parts.gate.run(lambda s: s.kpis(now))
        records = await parts.gate.run(lambda s: s.list_records())
        families = [*kpi_families(kpis), *record_families(records, now)]
    except StoreNotReady:
        pass  # no database yet: the service's own metrics only
    snapshot = CollectorRegistry()
    snapshot.register(_Snapshot(families))
    body = generate_latest(REGISTRY) + generate_latest(snapshot)
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


async def count_response(request: web.Request, response: web.StreamResponse) -> None:
    """Count one answered request under its route's pattern (bounded labels), or ``other``."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "other"
    REQUESTS.labels(request.method, route, str(response.status)).inc()
