"""The trail KPIs, the open records and the overdue actions as Prometheus gauges, computed at
scrape time from the store (the records service's ``/metrics``).

Example::

    >>> from prometheus_client import REGISTRY
    >>> REGISTRY.register(KpiCollector(store))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from detectors.records.models import OPEN_STATES, ActionStatus, Kpis, MasterRecord, State
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


def record_families(records: list[MasterRecord], now: datetime) -> Iterator[GaugeMetricFamily]:
    """Open records by state (every open state, 0 included), CAPA actions past their current
    due date and not done, and the records that have such an action."""
    open_by_state = GaugeMetricFamily(
        "otwatch_records_open", "Master records not closed or cancelled, by state",
        labels=["state"])
    for state in State:
        if state in OPEN_STATES:
            count = sum(1 for r in records if r.state == state)
            open_by_state.add_metric([state.value], float(count))
    yield open_by_state
    today = now.date()
    overdue = {r.id: sum(1 for a in r.capa_actions if _overdue(a.status, a.current_due, today))
               for r in records if r.state in OPEN_STATES}
    yield GaugeMetricFamily("otwatch_records_overdue_actions",
                            "CAPA actions of open records past their current due date, not done",
                            value=float(sum(overdue.values())))
    yield GaugeMetricFamily("otwatch_records_overdue_records",
                            "Open records with at least one overdue CAPA action",
                            value=float(sum(1 for n in overdue.values() if n)))


def _overdue(status: ActionStatus, due: date, today: date) -> bool:
    return status in (ActionStatus.OPEN, ActionStatus.IN_PROGRESS) and due < today


class KpiCollector(Collector):
    """A custom collector: each scrape reads the trail once and reports the KPIs."""

    def __init__(
        self, store: RecordStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._store = store
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from kpi_families(self._store.kpis(self._clock()))
