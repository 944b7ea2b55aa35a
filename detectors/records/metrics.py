"""The trail KPIs as Prometheus gauges, computed at scrape time from the store.

Example::

    >>> from prometheus_client import REGISTRY
    >>> REGISTRY.register(KpiCollector(store))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from detectors.records.models import Kpis
from detectors.records.store import RecordStore

_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("records", "otwatch_records_total_records", "Master records opened (from the trail)."),
    ("mean_time_to_detect_s", "otwatch_records_mean_time_to_detect_seconds",
     "Mean time from the change to its record being opened."),
    ("mean_time_to_contain_s", "otwatch_records_mean_time_to_contain_seconds",
     "Mean time from record creation to containment."),
    ("mean_time_to_close_s", "otwatch_records_mean_time_to_close_seconds",
     "Mean time from record creation to closure."),
    ("recurrence_rate", "otwatch_records_recurrence_ratio",
     "Share of closed records whose controller and tag got a new record after closure."),
    ("pct_actions_done_by_original_due", "otwatch_records_actions_on_time_percent",
     "Percentage of due CAPA actions done by their original due date."),
)


def kpi_families(kpis: Kpis) -> Iterator[GaugeMetricFamily]:
    """One gauge per KPI; a KPI with nothing to average yet is left out, not reported as 0."""
    for field, name, doc in _GAUGES:
        value = getattr(kpis, field)
        if value is not None:
            yield GaugeMetricFamily(name, doc, value=float(value))


class KpiCollector(Collector):
    """A custom collector: each scrape reads the trail once and reports the KPIs."""

    def __init__(
        self, store: RecordStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._store = store
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from kpi_families(self._store.kpis(self._clock()))
