"""The agent's CPU per event in the ``opcua`` benchmark, and where it goes (not a test).

Run: ``.venv/bin/python -m tests.bench.profile_opcua [--window 20] [--py-spy out.txt]``.

The agent phase of `tests.bench.opcua` alone: the same simulated PLC (10,000 items, 1,000
changes/s), config (100 ms publishing), broker and agent in this process. Prints the process
CPU over the window, as a share of a core and per event made durable (CPU time: comparable
on a loaded machine, unlike rates). With ``--py-spy PATH``, py-spy (install it into the venv
by hand: it is not a dependency) records this process over the same window, collapsed stacks
to PATH (``py-spy record -f raw``), to be summed by frame (a stack's count is its samples).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from simulators.broker import EmbeddedBroker
from tests.bench._common import Children, run_loop
from tests.bench.opcua import GcByGeneration, agent_config, agent_phase, start_plc

#: agent_phase lets the PLC change values this long before its window starts.
WARMUP_S = 2.0


async def record(go: Path, window: float, out: Path) -> asyncio.subprocess.Process:
    """py-spy on this process over the window that starts `WARMUP_S` after ``go`` appears."""
    while not go.exists():
        await asyncio.sleep(0.05)
    await asyncio.sleep(WARMUP_S)
    spy = Path(sys.executable).with_name("py-spy")
    return await asyncio.create_subprocess_exec(
        str(spy), "record", "--nonblocking", "-r", "200", "-d", str(round(window)), "-f", "raw",
        "-o", str(out), "-p", str(os.getpid()),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


async def profile(workdir: Path, children: Children, window: float, out: Path | None) -> str:
    ctrl, log, port = start_plc(workdir, children)
    go = log.with_name(log.name + ".go")
    spying = asyncio.ensure_future(record(go, window, out)) if out is not None else None
    with EmbeddedBroker() as broker:
        config = agent_config(port, workdir / "agent", broker.bootstrap, ctrl)
        gc_time = GcByGeneration()
        durable, t0, t1, cpu = await agent_phase(config, go, window, gc_time)
    if spying is not None:
        await (await spying).wait()
    events = sum(1 for _, _, at in durable if t0 <= at <= t1)
    return (f"agent CPU {cpu:.2f} s in {t1 - t0:.1f} s ({100 * cpu / (t1 - t0):.1f}% of a core);"
            f" {events} events durable, {1e6 * cpu / max(events, 1):.0f} us CPU per event;"
            f" {gc_time.describe(events)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--py-spy", type=Path, default=None, dest="out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        children = Children(Path(tmp))
        try:
            print(run_loop(profile(Path(tmp), children, args.window, args.out)))
        finally:
            children.stop_all()


if __name__ == "__main__":
    main()
