"""The long-running otwatch commands: the console scripts of pyproject.toml, less the tools."""

from __future__ import annotations

import tomllib

from tests.deploy._metrics import REPO

#: Console scripts run by hand (the simulator, the records CLI), not as services.
TOOLS = {"otwatch-sim", "otwatch-records"}
#: Services of the edge hosts: a systemd unit, no place in the central compose or cluster.
EDGE = {"otwatch-agent"}


def service_commands() -> set[str]:
    """Every console script that runs as a service, e.g. ``otwatch-classifier``."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return set(pyproject["project"]["scripts"]) - TOOLS


def central_commands() -> set[str]:
    """The services of the central site (compose, Kubernetes): all but the edge agent."""
    return service_commands() - EDGE
