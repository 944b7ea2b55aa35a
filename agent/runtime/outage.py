"""Log once per outage: the first failure at ERROR, repeats at DEBUG, the recovery at INFO.

A broker or a controller that is down is normal life at the edge; a log that repeats the same
error every second hides everything else. The state itself belongs on a dashboard: pass the
caller's gauge (set to 1 when up, 0 when down) and, if it counts them, its failure counter.

Example::

    >>> outage = OutageLog(log, "Kafka at kafka-1:9093 unreachable",
    ...                    "Kafka at kafka-1:9093 reachable again", gauge=BROKER_UP)
    >>> outage.failure("connection refused")   # ERROR once, then DEBUG
    >>> outage.success()                       # INFO once, if it was down
"""

from __future__ import annotations

import logging
from typing import Protocol


class _Gauge(Protocol):
    def set(self, value: float) -> None: ...


class _Counter(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class OutageLog:
    """The up/down state of one thing we depend on, logged once per change."""

    def __init__(
        self,
        log: logging.Logger,
        down: str,
        up: str,
        *,
        gauge: _Gauge | None = None,
        failures: _Counter | None = None,
    ) -> None:
        self._log = log
        self.down_text = down
        self.up_text = up
        self._gauge = gauge
        self._failures = failures
        self.down = False

    def failure(self, reason: str) -> None:
        """One failed attempt: ERROR if it starts an outage, DEBUG while it lasts."""
        if self._failures is not None:
            self._failures.inc()
        if self._gauge is not None:
            self._gauge.set(0)
        if self.down:
            self._log.debug("%s (still): %s", self.down_text, reason)
        else:
            self._log.error("%s: %s", self.down_text, reason)
            self.down = True

    def success(self) -> None:
        """One successful attempt: INFO if it ends an outage."""
        if self._gauge is not None:
            self._gauge.set(1)
        if self.down:
            self._log.info("%s", self.up_text)
        self.down = False
