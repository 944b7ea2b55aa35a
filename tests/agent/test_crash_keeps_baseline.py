"""SIGKILL of the agent right after a change is spooled: the restart does not report it again.

The baseline snapshot is written every few seconds; the tags a change moves are journalled in
the spool transaction that holds the change. A crash between the two must leave a restarted
agent with the moved baseline (the journal replayed), not report the same change a second time
as ``changed_while_unwatched``. The agent runs as its own process (``otwatch-agent run``) so the
kill is real; no broker runs, so every event stays in the spool.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from simulators.runtime import SimulatedPlant
from tests.agent.test_agent_detects import config_for, spooled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]
REPO = Path(__file__).resolve().parents[2]


async def start_agent(config_file: Path, state: Path) -> asyncio.subprocess.Process:
    (state / "ready").unlink(missing_ok=True)  # a killed agent leaves its ready file behind
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli", "--log-level", "WARNING", "run",
        "--config", str(config_file), cwd=REPO,
    )
    try:
        await wait_until(lambda: (state / "ready").exists(), "the agent to be ready", 30)
    except BaseException:
        await stop(proc, signal.SIGKILL)
        raise
    return proc


async def stop(proc: asyncio.subprocess.Process, sig: signal.Signals) -> int:
    if proc.returncode is None:
        os.kill(proc.pid, sig)
    return await asyncio.wait_for(proc.wait(), 20)


async def test_sigkill_after_a_change_is_spooled_reports_it_once(
    plant: SimulatedPlant, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    config = config_for(plant, state)
    config_file = tmp_path / "agent.json"  # JSON is YAML too
    config_file.write_text(config.model_dump_json())
    state.mkdir()

    def force_events() -> list[tuple[str, object]]:
        return [(e.change_kind.value, e.new_value) for e in spooled(state)
                if (e.controller.id, e.tag.name) == ("press-02", "force_sp")]

    first = await start_agent(config_file, state)
    try:
        # Right after start: the next baseline snapshot is seconds away when the kill comes.
        await plant.write("press-02", "force_sp", 300.5, actor="unknown")
        await wait_until(lambda: force_events() != [], "the change in the spool")
    finally:
        assert await stop(first, signal.SIGKILL) == -signal.SIGKILL

    second = await start_agent(config_file, state)
    try:
        await asyncio.sleep(1.0)  # ten scans of press-02 against the replayed baseline
    finally:
        assert await stop(second, signal.SIGTERM) == 0

    assert force_events() == [("setpoint_change", pytest.approx(300.5))]
