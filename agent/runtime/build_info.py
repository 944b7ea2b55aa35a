"""``otwatch_build_info{service, version, python} 1``: which otwatch each process runs.

Every service sets it once at start, with its own name, so a dashboard tells versions apart
during an upgrade. The one Prometheus metric of `agent.runtime` (an exception the import
contract names): made on first use, so a process that never calls `set_build_info` registers
nothing.
"""

from __future__ import annotations

import platform
from functools import cache

from prometheus_client import Info

from agent.runtime.cli import otwatch_version


@cache
def _build_info() -> Info:
    return Info("otwatch_build", "The otwatch version and Python of this process", ["service"])


def set_build_info(service: str) -> None:
    """Set ``otwatch_build_info{service=..., version=..., python=...} 1``."""
    _build_info().labels(service).info(
        {"version": otwatch_version(), "python": platform.python_version()})
