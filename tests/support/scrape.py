"""Scrape a process's Prometheus endpoint and compare it with the metrics the code defines."""

from __future__ import annotations

import urllib.request

from tests.deploy._metrics import defined_metrics


def scrape(port: int) -> str:
    """The text exposition of ``127.0.0.1:port/metrics`` (blocking: call it in a thread)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


def declared(text: str) -> set[str]:
    """Every metric family the scrape declares (its ``# HELP`` lines), samples or not."""
    return {line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")}


def defined(prefix: str) -> set[str]:
    """The families the product's code defines under ``prefix``, named as they are exposed."""
    return {
        name if kind != "Counter" or name.endswith("_total") else f"{name}_total"
        for name, kind in defined_metrics().items()
        if name.startswith(prefix)
    }
