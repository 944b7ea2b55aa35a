"""A watcher of one controller of the demo's agent config (``config/agent.yaml``), driven
directly with the source events a source produces; what it reports is collected in a list."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from agent.baseline import ControllerBaseline
from agent.config import AgentConfig, ControllerConfig, load_agent_config
from agent.contract import SuspectChange
from agent.runner import approval_book
from agent.sources.base import Connected, Reading
from agent.watcher import AgentIdentity, ControllerWatcher

CONFIG = Path(__file__).parents[2] / "config" / "agent.yaml"


def demo_config(state_dir: Path, *, approvals: bool = True) -> AgentConfig:
    """The demo's agent config with its state in ``state_dir``; ``approvals=False``: no
    approval files (every change is unapproved)."""
    config = load_agent_config(CONFIG)
    update: dict[str, object] = {"agent": config.agent.model_copy(update={"state_dir": state_dir})}
    if not approvals:
        update["approvals"] = config.approvals.model_copy(update={"files": []})
    return config.model_copy(update=update)


async def driven_watcher(config: AgentConfig, controller: ControllerConfig, connected: datetime,
                         ) -> tuple[ControllerWatcher, list[SuspectChange]]:
    """A watcher of ``controller``, connected at ``connected`` (session ``s1``), and the list
    its reported events go to."""
    seen: list[SuspectChange] = []

    async def sink(events: list[SuspectChange], moved: Mapping[str, Reading]) -> None:
        seen.extend(events)

    watcher = ControllerWatcher(
        AgentIdentity("agent-test", "site-test"), controller, ControllerBaseline(),
        approval_book(config), sink,
    )
    await watcher.on_event(Connected(connected, session="s1"))
    return watcher, seen
