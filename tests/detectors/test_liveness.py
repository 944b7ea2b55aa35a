"""``/healthz`` on the classifier's metrics port fails once the consumer loop is stuck, and
not before it first runs (a broker outage is waited out, not restarted)."""

from __future__ import annotations

import urllib.error
import urllib.request

from detectors.liveness import ConsumerProgress, serve_metrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_healthz_follows_the_consumer_loop_and_metrics_are_served() -> None:
    clock = Clock()
    progress = ConsumerProgress(stall_after_s=60, clock=clock)
    server = serve_metrics(("127.0.0.1", 0), progress)
    port = server.server_port
    try:
        assert get(port, "/healthz") == (200, "ok\n")  # not started: waiting is not stuck
        progress.tick()
        clock.now += 59
        assert get(port, "/healthz") == (200, "ok\n")
        clock.now += 2
        status, text = get(port, "/healthz")
        assert status == 503 and "no batch for 61 s" in text and "stall_after_s" in text
        progress.tick()
        assert get(port, "/healthz")[0] == 200
        status, metrics = get(port, "/metrics")
        assert status == 200
        assert "otwatch_classifier_consumer_last_batch_timestamp_seconds" in metrics
    finally:
        server.shutdown()
        server.server_close()
