"""The classifier's metrics endpoint with a liveness check: ``/healthz`` fails on a stuck
consumer.

The read loop hands over a batch (empty ones too) at least every half second
(`agent.kafka.consume.consume_batches`); `ConsumerProgress.tick` marks each. Once the loop has
run, ``/healthz`` answers 503 when no batch was handed over for ``stall_after_s``: the loop is
stuck (a hung write, a wedged client), and a restart is what helps. Before the loop first runs
(the broker or the database not there yet, which the process waits for itself) it answers
200, so a broker outage does not turn into a restart loop. Every other path is the metrics.

Example::

    >>> progress = ConsumerProgress(stall_after_s=300)
    >>> serve_metrics(("127.0.0.1", 9465), progress)   # GET /metrics, GET /healthz
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import Gauge, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

LAST_BATCH = Gauge(
    "otwatch_classifier_consumer_last_batch_timestamp_seconds",
    "Unix time the suspect consumer's read loop last handed over a batch (empty ones too)",
)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class ConsumerProgress:
    """When the read loop last made progress (`tick`); `problem` says if it is stuck."""

    def __init__(self, stall_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_after_s = stall_after_s
        self._clock = clock
        self._last: float | None = None

    def tick(self) -> None:
        self._last = self._clock()
        LAST_BATCH.set(time.time())

    def problem(self) -> str | None:
        """None while healthy; else why the consumer counts as stuck."""
        if self._last is None:
            return None
        idle = self._clock() - self._last
        if idle <= self.stall_after_s:
            return None
        return (f"the suspect consumer handed over no batch for {idle:.0f} s "
                f"(limit classifier.stall_after_s={self.stall_after_s:.0f})")


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: Prometheus and the kubelet ask every few seconds."""


def health_app(progress: ConsumerProgress) -> Callable[[dict[str, Any], StartResponse],
                                                        Iterable[bytes]]:
    """WSGI: ``/healthz`` from ``progress``, everything else the Prometheus metrics."""
    metrics = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/healthz":
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        problem = progress.problem()
        status = "200 OK" if problem is None else "503 Service Unavailable"
        start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
        return [(problem or "ok").encode() + b"\n"]

    return app


def serve_metrics(address: tuple[str, int], progress: ConsumerProgress) -> ThreadingWSGIServer:
    """Serve metrics and ``/healthz`` on a daemon thread (as `prometheus_client` does)."""
    host, port = address
    server = make_server(host, port, health_app(progress), ThreadingWSGIServer,
                         handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True,
                     name="otwatch-metrics").start()
    return server
