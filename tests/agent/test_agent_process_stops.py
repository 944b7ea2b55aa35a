"""Issue 14 items 5 and 7, the agent's share, with a real ``otwatch-agent run`` process and a
broker address where nothing listens:

- while the broker is unreachable the log has one line for the outage, none per attempt (it
  used to print every aiokafka reconnect, and the heartbeat's outage as a second line);
- a Modbus request that gets no answer leaves no pymodbus frame dump in the log at INFO (our
  source logs the outage once);
- SIGINT and SIGTERM, sent by PID, stop the agent with exit status 0 and one line, no
  traceback, whether it is running or still starting.

Counts are over fixed intervals of the test's own choosing; nothing asserts a duration.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from simulators.modbus_plc import ModbusPLC
from simulators.runtime import SimulatedPlant
from tests.agent.test_agent_detects import config_for, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]
REPO = Path(__file__).resolve().parents[2]


class AgentProcess:
    """``python -m agent.cli run`` with its standard error read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.signalled_at = datetime.max.replace(tzinfo=UTC)
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, config_file: Path) -> AgentProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent.cli", "run", "--config", str(config_file), cwd=REPO,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    async def stop(self, sig: signal.Signals) -> int:
        # to the millisecond, as the log's time stamps: a line of this very millisecond
        # counts as logged before the signal
        now = datetime.now(UTC)
        self.signalled_at = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self.proc.returncode is None:
            os.kill(self.proc.pid, sig)
        try:
            code = await asyncio.wait_for(self.proc.wait(), 30)
        finally:
            if self.proc.returncode is None:
                os.kill(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
        await self._reader
        return code


def assert_one_stop_line(lines: list[str], signalled_at: datetime, words: str) -> None:
    """Of the lines logged after the signal (by their time stamps; a line with none is the
    command's own last word), there is one: the stop line."""
    after = [line for line in lines if _logged_at(line) is None or _logged_at(line) > signalled_at]
    assert len(after) == 1 and words in after[0], (after, lines)
    assert lines[-1] == after[0], lines


def _logged_at(line: str) -> datetime | None:
    """The UTC time stamp a log line starts with (``2026-11-30T13:47:50.060Z``), if any."""
    try:
        return datetime.strptime(line[:24], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def write_config(plant: SimulatedPlant, tmp_path: Path) -> tuple[Path, Path]:
    state = tmp_path / "state"
    state.mkdir()
    config = config_for(plant, state)  # its broker address has nothing listening
    controllers = [
        c.model_copy(update={"timeout_s": 0.3}) if c.id == "press-01" else c
        for c in config.controllers
    ]
    config = config.model_copy(update={"controllers": controllers})
    path = tmp_path / "agent.json"  # JSON is YAML too
    path.write_text(config.model_dump_json())
    return path, state


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_broker_down_one_line_per_outage_and_a_clean_stop(
    plant: SimulatedPlant, tmp_path: Path, sig: signal.Signals
) -> None:
    config_file, state = write_config(plant, tmp_path)
    press = plant.plc("press-01")
    assert isinstance(press, ModbusPLC)
    agent = await AgentProcess.start(config_file)
    try:
        await wait_until(lambda: (state / "ready").exists(), "the agent to be ready", 30)
        ready = len(agent.lines)
        press.faults.delay_s = 1.0  # longer than its timeout: pymodbus gets no answer
        await asyncio.sleep(3.0)
        press.faults.delay_s = 0.0
        await asyncio.sleep(3.0)
        during = agent.lines[ready:]
    finally:
        press.faults.delay_s = 0.0
        code = await agent.stop(sig)
    assert code == 0, agent.lines
    assert_one_stop_line(agent.lines, agent.signalled_at, "agent edge-01 stopped")
    assert not [line for line in agent.lines if "Traceback" in line]
    kafka = [line for line in agent.lines if "Kafka" in line or "aiokafka" in line]
    assert len(kafka) == 1 and "unreachable" in kafka[0], kafka  # the outage, once
    assert not [line for line in agent.lines if "pymodbus" in line or ">>>>>" in line]
    assert not [line for line in agent.lines if " DEBUG " in line]
    # the 6 s after ready: press-01 unanswered for a while and back, one line each way, and
    # the monitoring gap it left reported as an event (if it outlasted monitoring_gap_min_s)
    outage = [line for line in during if "agent.sources.modbus" in line]
    events = [line for line in during if "agent.runner" in line and "monitoring_gap" in line]
    assert len(outage) == 2 and len(outage) + len(events) == len(during) <= 3, during
    assert "press-01" in outage[0] and "unreachable" in outage[0], outage
    assert "press-01" in outage[1] and "reachable again" in outage[1], outage


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_a_signal_during_start_up_is_a_clean_stop(
    plant: SimulatedPlant, tmp_path: Path, sig: signal.Signals
) -> None:
    config_file, _state = write_config(plant, tmp_path)
    agent = await AgentProcess.start(config_file)
    try:
        await wait_until(lambda: bool(agent.lines), "the first line of the start-up", 30)
    finally:
        code = await agent.stop(sig)
    assert code == 0, agent.lines
    assert not [line for line in agent.lines if "Traceback" in line], agent.lines
    assert_one_stop_line(agent.lines, agent.signalled_at, "stopped")
    kafka = [line for line in agent.lines if "Kafka" in line or "aiokafka" in line]
    assert len(kafka) <= 1, kafka
