"""``otwatch_build_info``: which version of otwatch a classifier-side process runs.

Each service sets it once at start (`set_build_info`) with its own name, so a dashboard can
tell versions apart during an upgrade. (The agent has its own, in `agent.metrics`: the
classifier side must not import the agent's metrics.)
"""

from __future__ import annotations

from prometheus_client import Info

from agent.runtime.cli import build_labels

BUILD_INFO = Info("otwatch_build", "The otwatch version and Python of this process",
                  ["service"])


def set_build_info(service: str) -> None:
    """Set ``otwatch_build_info{service=..., version=..., python=...} 1``."""
    BUILD_INFO.labels(service).info(build_labels())
