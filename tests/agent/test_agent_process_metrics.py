"""The agent process, run as ``otwatch-agent run``, exports every metric of the agent (and none
of the classifier's), scraped over HTTP from its metrics port."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from simulators.broker import free_port
from simulators.runtime import SimulatedPlant
from tests.agent.test_agent_detects import config_for, wait_until
from tests.support.scrape import declared, defined, scrape

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]
REPO = Path(__file__).resolve().parents[2]


async def test_the_agent_process_exports_its_metrics(plant: SimulatedPlant, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    config = config_for(plant, state)
    port = free_port()
    config = config.model_copy(update={"metrics": config.metrics.model_copy(update={"port": port})})
    config_file = tmp_path / "agent.json"  # JSON is YAML too
    config_file.write_text(config.model_dump_json())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli", "--log-level", "WARNING", "run",
        "--config", str(config_file), cwd=REPO,
    )
    try:
        await wait_until(lambda: (state / "ready").exists(), "the agent to be ready", 30)
        text = await asyncio.to_thread(scrape, port)
    finally:
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 20)
    assert code == 0
    families = declared(text)
    assert defined("otwatch_agent_") <= families, defined("otwatch_agent_") - families
    assert not {name for name in families if name.startswith("otwatch_classifier_")}
    assert 'otwatch_agent_controller_up{controller="press-01"} 1.0' in text
