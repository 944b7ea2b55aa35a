"""Log once per outage: ERROR when it starts, DEBUG while it lasts, INFO when it ends."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from agent.runtime.outage import OutageLog

log = logging.getLogger("tests.outage")


def test_one_error_per_outage_and_one_info_per_recovery(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    up = Gauge("thing_up", "up", registry=registry)
    failures = Counter("thing_failures", "failures", registry=registry)
    outage = OutageLog(log, "thing unreachable", "thing reachable again", gauge=up,
                       failures=failures)
    caplog.set_level(logging.DEBUG, logger="tests.outage")

    outage.success()  # nothing to report while it was never down
    assert registry.get_sample_value("thing_up") == 1
    for reason in ("refused", "refused", "timeout"):
        outage.failure(reason)
    assert outage.down and registry.get_sample_value("thing_up") == 0
    outage.success()
    outage.success()
    outage.failure("refused again")

    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "thing unreachable: refused"),
        ("DEBUG", "thing unreachable (still): refused"),
        ("DEBUG", "thing unreachable (still): timeout"),
        ("INFO", "thing reachable again"),
        ("ERROR", "thing unreachable: refused again"),
    ]
    assert registry.get_sample_value("thing_failures_total") == 4


def test_without_a_gauge_or_counter_it_only_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tests.outage")
    outage = OutageLog(log, "down", "up")
    outage.failure("x")
    outage.success()
    assert [r.levelname for r in caplog.records if r.name == "tests.outage"] == ["ERROR", "INFO"]
