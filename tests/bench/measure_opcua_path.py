"""CPU per OPC UA notification through the agent's own path, no asyncua, no broker (not a test).

Run: ``.venv/bin/python -m tests.bench.measure_opcua_path [--batches 300] [--per-batch 100]``.

The real `agent.runner.Agent` of the ``opcua`` benchmark (one controller of 10,000 tags; its
publisher is never started) is given what its subscription source would emit: the session's
full read, then ``--batches`` notification batches of ``--per-batch`` changed tags each (round
robin, each value new, as `tests.bench.opcua_writer` writes them). Each batch goes through the
watcher (detect, verdict, events, snapshot, limits; the reports' clock advanced 0.1 s a batch)
and the spool (sign, commit with ``synchronous=FULL``), as in the agent. Prints the process
CPU per notification (µs), the median and the least of ``--rounds`` rounds (the least is the
steadiest figure on a shared machine); ``--drain`` also reads and removes the spooled rows as
the publisher does (without sending them). CPU time, not wall time: comparable on a loaded machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent import reports
from agent.runner import Agent
from agent.sources.base import Connected, Reading, Readings
from simulators.plant import OpcUaController
from simulators.scale import scale_plant
from tests.bench.opcua import TAGS, agent_config


async def replay(agent: Agent, names: list[str], batches: int, per_batch: int,
                 rounds: int, drain: bool) -> list[float]:
    (watcher,) = agent.watchers.values()
    t = datetime.now(UTC)
    await watcher.on_event(Connected(t, session="bench"))
    await watcher.on_event(Readings(t, {n: Reading(float(i), t) for i, n in enumerate(names)}))
    value, k, out = 1_000_000.0, 0, []
    # The batches are replayed faster than the subscription sends them (every 0.1 s): the
    # reports' clock (when a large snapshot last went whole into an event) runs at that pace.
    clock = [time.monotonic()]
    reports.time = types.SimpleNamespace(  # type: ignore[assignment]
        monotonic=lambda: clock[0], time_ns=time.time_ns)
    for _ in range(rounds):
        cpu0 = time.process_time()
        for _ in range(batches):
            t += timedelta(milliseconds=100)
            clock[0] += 0.1
            values = {}
            for _ in range(per_batch):
                value += 1
                values[names[k % len(names)]] = Reading(value, t)
                k += 1
            await watcher.on_event(Readings(t, values, complete=False))
            if drain:
                rows = agent.spool.peek(10_000)
                agent.spool.ack([row[0] for row in rows])
        out.append((time.process_time() - cpu0) / (batches * per_batch) * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--per-batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--drain", action="store_true")
    args = parser.parse_args()
    ctrl = scale_plant(modbus=0, opcua=1, tags=TAGS).controllers()[0]
    assert isinstance(ctrl, OpcUaController)
    with tempfile.TemporaryDirectory() as tmp:
        config = agent_config(4840, Path(tmp) / "agent", "127.0.0.1:9", ctrl)
        agent = Agent(config)
        try:
            names = [t.name for t in ctrl.tags]
            per = asyncio.run(replay(agent, names, args.batches, args.per_batch, args.rounds,
                                     args.drain))
        finally:
            agent.spool.close()
    print(f"us/notification: median {statistics.median(per):.1f} least {min(per):.1f}"
          f" (rounds: {', '.join(f'{p:.1f}' for p in per)})")


if __name__ == "__main__":
    main()
