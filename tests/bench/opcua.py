"""``opcua_latency_p99_ms`` and ``opcua_cpu_ratio``: 10,000 items, 1,000 changes/s, 100 ms.

One simulated OPC UA PLC with 10,000 variables (100 folders of 100) runs in a process of its
own (`tests.bench.opcua_writer`) and changes 1,000 of them per second on the server side,
logging the wall-clock time just before each write. Both sides run on this machine, so write
time and arrival time are on one clock (CLOCK_REALTIME).

* agent: the real `agent.runner.Agent` (OpcuaSource as it exists: ``mode: subscribe``,
  ``publishing_interval_ms`` 100; ControllerWatcher, Spool, SpoolPublisher to a fresh broker)
  in this process, with one OPC UA controller of 10,000 tags. The only instrumentation: the
  spool sink notes ``time.time()`` after ``Spool.append`` returned (the SQLite transaction holding
  the event's row is committed then). Latency = that time - the writer's ``time.time()`` just
  before its server-side write: one clock (CLOCK_REALTIME of this machine), two processes.
  The controller's config is the product default but for the publishing interval (100 ms):
  ``audit_events`` stays on; the writer's server-side writes raise no audit events (process
  logic, as in a plant), so the source does not hold changes for an audit event.
* bare: an asyncua client in this process, one subscription (100 ms publishing interval,
  iterator mode, queue sized to the items) on the same 10,000 nodes; latency = arrival of the
  notification - write time.

CPU: ``time.process_time()`` of this process over the same window length for each phase.
A change that never reaches the spool counts as infinitely late.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from asyncua.client.client import Client
from asyncua.common.subscription import DataChangeEvent

from agent.config import AgentConfig
from agent.contract import SuspectChange
from agent.runner import Agent
from agent.sources.base import Reading
from simulators.broker import EmbeddedBroker
from simulators.plant import OpcUaController
from simulators.scale import scale_plant
from tests.bench._common import Children, Result, child_main, percentile, run_loop, wait_for_json

KEYS = ["opcua_latency_p99_ms", "opcua_cpu_ratio"]
TAGS, RATE = 10_000, 1_000
#: The source's mode (subscribe: the default; poll: BENCH_OPCUA_MODE=poll, every 0.1 s).
MODE = os.environ.get("BENCH_OPCUA_MODE", "subscribe")
TAIL_S = 2.0  # changes written in the last TAIL_S s of a window are not scored


class TimedAgent(Agent):
    """The real agent; its sink also notes when each event became durable."""

    durable: list[tuple[str, Any, float]]

    async def _store(
        self, controller_id: str, events: list[SuspectChange], moved: Mapping[str, Reading]
    ) -> None:
        await super()._store(controller_id, events, moved)
        at = time.time()
        self.durable.extend((ev.tag.name, ev.new_value, at) for ev in events)


def agent_config(port: int, state: Path, bootstrap: str, ctrl: OpcUaController) -> AgentConfig:
    return AgentConfig.model_validate({
        "agent": {"id": "edge-bench", "site": "bench", "state_dir": str(state)},
        "kafka": {"bootstrap_servers": bootstrap, "enable_idempotence": False},
        "metrics": {"port": 0},
        "controllers": [{
            "id": ctrl.id, "protocol": "opcua", "mode": MODE, "publishing_interval_ms": 100.0,
            "poll_interval_s": 0.1,
            "endpoint": f"opc.tcp://127.0.0.1:{port}{ctrl.endpoint_path()}",
            "tags": [
                {"name": t.name, "kind": "setpoint", "node": f"nsu={ctrl.namespace_uri};s={t.node}"}
                for t in ctrl.tags
            ],
        }],
    })


def read_writes(log: Path) -> dict[tuple[str, int], float]:
    out = {}
    for line in log.read_text().splitlines():
        name, value, at = line.split()
        out[(name, int(value))] = float(at)
    return out


def latencies(writes: dict[tuple[str, int], float], seen: list[tuple[str, Any, float]],
              t0: float, t1: float) -> tuple[list[float], int]:
    """Latencies (s) of the writes made in [t0, t1 - TAIL_S]; missing ones are inf."""
    arrived: dict[tuple[str, int], float] = {}
    for name, value, at in seen:
        if isinstance(value, float | int):
            arrived.setdefault((name, int(value)), at)
    out, missing = [], 0
    for key, wrote in writes.items():
        if t0 <= wrote <= t1 - TAIL_S:
            got = arrived.get(key)
            if got is None:
                missing += 1
            out.append(float("inf") if got is None else got - wrote)
    return out, missing


Seen = list[tuple[str, Any, float]]  # (tag, value, time.time() when durable or notified)


class GcByGeneration:
    """CPU seconds and collections of the cyclic garbage collector per generation while in
    the ``with`` block, each collection timed on the thread that ran it. py-spy charges a
    collection to whatever line allocated when it started, so a profile does not show it (in
    the classifier's process it was 1.0-1.5 CPU-s of a 10 s run at thresholds (10000, 10, 10);
    in the agent's, 1.6-2.1 us of its ~85 us CPU per event in the ``opcua`` window)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self._started: dict[int, float] = {}

    def __enter__(self) -> GcByGeneration:
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        thread = threading.get_ident()
        if phase == "start":
            self._started[thread] = time.thread_time()
        elif thread in self._started:
            generation = info["generation"]
            self.seconds[generation] += time.thread_time() - self._started.pop(thread)
            self.collections[generation] += 1

    @property
    def total_s(self) -> float:
        return sum(self.seconds)

    def describe(self, events: int) -> str:
        per_generation = ", ".join(
            f"gen {g} {n}x {1e6 * s / max(events, 1):.1f}"
            for g, (n, s) in enumerate(zip(self.collections, self.seconds, strict=True))
        )
        return (f"gc {self.total_s:.2f} CPU-s, {1e6 * self.total_s / max(events, 1):.1f}"
                f" us per event ({per_generation}); thresholds {gc.get_threshold()},"
                f" {gc.get_freeze_count():,} frozen")


async def agent_phase(config: AgentConfig, go: Path, window: float,
                      gc_time: GcByGeneration | None = None) -> tuple[Seen, float, float, float]:
    """The agent's changes made durable, its window (t0, t1) and CPU s in it; ``gc_time``
    counts the garbage collector's CPU in that window."""
    agent = TimedAgent(config)
    agent.durable = []
    task = asyncio.create_task(agent.run(), name="bench-agent")
    try:
        ready = config.agent.state_dir / "ready"
        deadline = time.monotonic() + 60
        while not ready.exists():
            if task.done() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the agent ({MODE}) did not complete one scan of"
                    f" {TAGS} nodes within 60 s: its reads time out (timeout_s 2.0) and it"
                    f" reconnects" if not task.done() else f"the agent failed: {task.exception()}"
                )
            await asyncio.sleep(0.1)
        go.touch()  # the PLC starts changing values
        await asyncio.sleep(2.0)
        with gc_time or contextlib.nullcontext():
            t0, cpu0 = time.time(), time.process_time()
            await asyncio.sleep(window)
            t1, cpu = time.time(), time.process_time() - cpu0
    finally:
        agent.stop()
        done, _ = await asyncio.wait({task}, timeout=15)
        if not done:  # the agent's own shutdown is bounded (5 s); this should not happen
            task.cancel()
            await asyncio.wait({task}, timeout=5)
            raise RuntimeError("the agent did not stop within 15 s of stop()")
    return agent.durable, t0, t1, cpu


async def bare_phase(port: int, ctrl: OpcUaController, window: float
                     ) -> tuple[Seen, float, float, float]:
    client = Client(f"opc.tcp://127.0.0.1:{port}{ctrl.endpoint_path()}", timeout=10)
    await client.connect()
    seen: list[tuple[str, Any, float]] = []
    try:
        ns = (await client.get_namespace_array()).index(ctrl.namespace_uri)
        nodes = [client.get_node(f"ns={ns};s={t.node}") for t in ctrl.tags]
        names = {n.nodeid: t.name for n, t in zip(nodes, ctrl.tags, strict=True)}
        sub = await client.create_subscription(100, queue_maxsize=4 * TAGS)

        async def consume() -> None:
            async for ev in sub:
                if not isinstance(ev, DataChangeEvent):
                    continue
                seen.append((names[ev.node.nodeid], ev.value, time.time()))

        task = asyncio.create_task(consume(), name="bench-bare-subscription")
        try:
            for i in range(0, len(nodes), 1000):
                await sub.subscribe_data_change(nodes[i : i + 1000], queuesize=1)
            await asyncio.sleep(3.0)  # the initial values arrive
            t0, cpu0 = time.time(), time.process_time()
            await asyncio.sleep(window)
            t1, cpu = time.time(), time.process_time() - cpu0
        finally:
            task.cancel()
            await asyncio.wait({task}, timeout=5)
            await sub.delete()
    finally:
        await client.disconnect()
    return seen, t0, t1, cpu


def start_plc(workdir: Path, children: Children) -> tuple[OpcUaController, Path, int]:
    """The simulated PLC in a process of its own: its controller, its writes log and port."""
    ctrl = scale_plant(modbus=0, opcua=1, tags=TAGS).controllers()[0]
    assert isinstance(ctrl, OpcUaController)
    log, ports_file = workdir / "writes.log", workdir / "plc-ports.json"
    children.python("plc", ["tests.bench.opcua_writer", "--tags", str(TAGS), "--rate", str(RATE),
                            "--ports-file", str(ports_file), "--log", str(log)])
    return ctrl, log, wait_for_json(ports_file, children, 120)[ctrl.id]


async def measure(workdir: Path, children: Children, window: float) -> list[Result]:
    ctrl, log, port = start_plc(workdir, children)
    gc_time = GcByGeneration()
    with EmbeddedBroker() as broker:
        config = agent_config(port, workdir / "agent", broker.bootstrap, ctrl)
        a_seen, a0, a1, a_cpu = await agent_phase(
            config, log.with_name(log.name + ".go"), window, gc_time
        )
    children.check_alive()
    b_seen, b0, b1, b_cpu = await bare_phase(port, ctrl, window)
    children.check_alive()
    writes = read_writes(log)
    a_lat, a_missing = latencies(writes, a_seen, a0, a1)
    b_lat, b_missing = latencies(writes, b_seen, b0, b1)
    a_p99, b_p99 = percentile(a_lat, 99) * 1000, percentile(b_lat, 99) * 1000
    scored = len(a_lat)
    notes = [
        f"agent: {scored} changes scored, {a_missing} never durable; p50"
        f" {percentile(a_lat, 50) * 1000:.0f} ms, p99 {a_p99:.0f} ms; CPU {a_cpu:.2f} s in"
        f" {a1 - a0:.0f} s ({100 * a_cpu / (a1 - a0):.0f}% of a core); agent "
        + gc_time.describe(sum(1 for _, _, at in a_seen if a0 <= at <= a1)),
        f"bare subscription: {len(b_lat)} changes scored, {b_missing} missing; p50"
        f" {percentile(b_lat, 50) * 1000:.0f} ms, p99 {b_p99:.0f} ms; CPU {b_cpu:.2f} s in"
        f" {b1 - b0:.0f} s ({100 * b_cpu / (b1 - b0):.0f}% of a core)",
        f"agent OpcuaSource mode {MODE}, publishing interval 100 ms (poll mode: every 0.1 s)",
    ]
    lat = Result("opcua_latency_p99_ms", a_p99 if a_p99 != float("inf") else None,
                 baseline=b_p99 if b_p99 != float("inf") else None,
                 baseline_what="bare asyncua subscription, p99 ms", notes=notes)
    if lat.value is None:
        lat.reason = f"over 1% of the changes never reached the spool ({a_missing} of {scored})"
    cpu = Result("opcua_cpu_ratio", (a_cpu / (a1 - a0)) / (b_cpu / (b1 - b0)),
                 baseline=b_cpu / (b1 - b0), baseline_what="bare asyncua subscription, CPU-s per s")
    return [lat, cpu]


def run(quick: bool) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        children = Children(Path(tmp))
        try:
            return run_loop(measure(Path(tmp), children, 10.0 if quick else 30.0))  # type: ignore[no-any-return]
        finally:
            children.stop_all()


if __name__ == "__main__":
    child_main(KEYS, run)
