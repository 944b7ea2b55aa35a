"""``e2e_latency_p99_ms``: PLC write → master record evidence committed, 10 changes/s, 100 PLCs.

``e2e_pipeline_p99_ms``: the same minus the sampling delay, per protocol: from the agent's
``detected_at`` (the poll or the notification that saw the change) to the evidence row seen
committed; the figure is the worse protocol's p99 (each protocol's in the notes). A write never
seen counts as infinitely late here too.

The plant: `simulators.scale.scale_plant(90, 10, 10_000)` (90 Modbus PLCs of ~44 registers, 10
OPC UA servers of 600 variables), served by ``otwatch-sim run --scale 90,10,10000 --shard i/2``
in two processes. Everything else is the product as deployed, each in a process of its own:
a fresh embedded broker (Tansu), the real ``otwatch-agent run`` and the real
``otwatch-classifier run`` (``python -m detectors.cli``) with ``config/criteria.yaml`` and a
SQLite records database. Every tag is a critical-to-quality setpoint and no change is
approved, so every change is JQS-1 and lands as one ``evidence`` row.

Agent settings: the product defaults but for the Modbus poll interval, 0.5 s as
``config/agent.yaml`` ships it (the default is 1.0 s; BENCH_E2E_POLL_S overrides it). OPC UA
controllers subscribe (default publishing interval 250 ms, sampling 100 ms).

Load: this process writes over the wire as an engineering station would (pymodbus
``write_register`` on a uint16 register; asyncua ``write_value`` of a Double), 10 writes/s,
round robin over the 100 controllers, each value unique. Clock: ``time.time()`` of this process
just before each write is sent, and ``time.time()`` of this process when a poll of the records
database (read only, WAL, every 10 ms) first sees the evidence row committed: one clock, one
process. Latency = seen - written. The classifier's own ``attached_at`` (stamped before its
commit) gives a second figure, as a note. A write whose evidence is not seen within
``SETTLE_S`` after the load ends counts as infinitely late.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from pymodbus.client import AsyncModbusTcpClient

from agent.contract import EventSigner
from simulators.broker import EmbeddedBroker, free_port
from simulators.demo import agent_signing_key
from simulators.plant import ModbusController, OpcUaController
from simulators.scale import scale_plant
from tests.bench._common import (
    ROOT,
    Children,
    Result,
    child_main,
    modbus_agent_config,
    percentile,
    proc_cpu_s,
    run_loop,
    start_scale_sim,
)

KEYS = ["e2e_latency_p99_ms", "e2e_pipeline_p99_ms"]
MODBUS, OPCUA, TAGS = 90, 10, 10_000
SHARDS = 2
RATE = 10.0  # changes per second, across all controllers
POLL_S = float(os.environ.get("BENCH_E2E_POLL_S", "0.5"))
SETTLE_S = 10.0  # how long a late write may still arrive after the load ends
FIRST_VALUE = 1_000


def agent_config(ports: dict[str, int], bootstrap: str, state: Path) -> dict[str, Any]:
    controllers: list[dict[str, Any]] = []
    for ctrl in scale_plant(MODBUS, OPCUA, TAGS).controllers():
        if isinstance(ctrl, ModbusController):
            cfg = modbus_agent_config(ctrl, ports[ctrl.id], poll_interval_s=POLL_S)
            data = cfg.model_dump(mode="json", exclude_defaults=False)
            for tag in data["tags"]:
                tag["critical_to_quality"] = True
            controllers.append(data)
        else:
            assert isinstance(ctrl, OpcUaController)
            controllers.append({
                "id": ctrl.id,
                "protocol": "opcua",
                "endpoint": f"opc.tcp://127.0.0.1:{ports[ctrl.id]}{ctrl.endpoint_path()}",
                "tags": [
                    {"name": t.name, "kind": "setpoint", "critical_to_quality": True,
                     "node": f"nsu={ctrl.namespace_uri};s={t.node}"}
                    for t in ctrl.tags
                ],
            })
    return {
        "agent": {"id": "edge-e2e", "site": "scale", "state_dir": str(state)},
        "kafka": {"bootstrap_servers": bootstrap, "enable_idempotence": False},
        "metrics": {"host": "127.0.0.1", "port": free_port()},
        "controllers": controllers,
    }


def classifier_config(bootstrap: str, db: Path, signer: EventSigner) -> dict[str, Any]:
    return {
        "classifier": {"group_id": "bench-e2e", "records_db": str(db),
                       "criteria": str(ROOT / "config" / "criteria.yaml"),
                       # the agent signs its events (its key made before it starts, as the
                       # demo does); the classifier trusts that key and no other
                       "agent_keys": {signer.key_id: signer.public_key_b64}},
        "kafka": {"bootstrap_servers": bootstrap, "client_id": "bench-e2e",
                  "enable_idempotence": False},
        "metrics": {"host": "127.0.0.1", "port": free_port()},
    }


class Writers:
    """One engineering-station connection per controller; `write` returns the time it sent."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports
        self.modbus: dict[str, tuple[AsyncModbusTcpClient, int, int, str]] = {}
        self.opcua: dict[str, tuple[Client, Any, str]] = {}
        self.order: list[str] = []

    async def start(self) -> None:
        for ctrl in scale_plant(MODBUS, OPCUA, TAGS).controllers():
            self.order.append(ctrl.id)
            if isinstance(ctrl, ModbusController):
                reg = next(t for t in ctrl.tags if t.type.value == "uint16" and t.scale == 1.0)
                mb = AsyncModbusTcpClient("127.0.0.1", port=self.ports[ctrl.id], timeout=5)
                if not await mb.connect():
                    raise ConnectionError(f"cannot connect to {ctrl.id}")
                self.modbus[ctrl.id] = (mb, ctrl.device_id, reg.address, reg.name)
            else:
                assert isinstance(ctrl, OpcUaController)
                ua_client = Client(
                    f"opc.tcp://127.0.0.1:{self.ports[ctrl.id]}{ctrl.endpoint_path()}", timeout=10
                )
                await ua_client.connect()
                ns = (await ua_client.get_namespace_array()).index(ctrl.namespace_uri)
                var = ctrl.tags[1]
                node = ua_client.get_node(f"ns={ns};s={var.node}")
                self.opcua[ctrl.id] = (ua_client, node, var.name)

    async def write(self, ctrl: str, value: int) -> tuple[str, float]:
        """Write ``value`` to the controller's bench tag; (tag, time just before sending)."""
        if ctrl in self.modbus:
            mb, device_id, address, name = self.modbus[ctrl]
            at = time.time()
            rr = await mb.write_register(address, value, device_id=device_id)
            if rr.isError():
                raise RuntimeError(f"{ctrl} refused the write: {rr}")
            return name, at
        _, node, name = self.opcua[ctrl]
        at = time.time()
        await node.write_value(ua.DataValue(ua.Variant(float(value), ua.VariantType.Double)))
        return name, at

    async def stop(self) -> None:
        for mb, *_ in self.modbus.values():
            mb.close()
        for client, *_ in self.opcua.values():
            try:
                async with asyncio.timeout(3):
                    await client.disconnect()
            except Exception:  # closing anyway
                client.disconnect_socket()


class EvidenceWatch:
    """Polls the records database (read only) for new evidence rows; notes when each is seen."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.conn: sqlite3.Connection | None = None
        self.last = 0
        #: (controller, tag, int value) -> (seen, attached_at, detected_at) as unix times
        self.seen: dict[tuple[str, str, int], tuple[float, float, float]] = {}
        self.rows = 0

    def poll(self) -> None:
        if self.conn is None:
            if not self.db.exists():
                return
            try:
                self.conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=1)
                self.conn.execute("SELECT 1 FROM evidence LIMIT 1")
            except sqlite3.Error:
                self.conn = None
                return
        rows = self.conn.execute(
            "SELECT rowid, raw, attached_at FROM evidence WHERE rowid > ? ORDER BY rowid",
            (self.last,),
        ).fetchall()
        now = time.time()
        for rowid, raw, attached in rows:
            self.last = rowid
            self.rows += 1
            ev = json.loads(raw)
            value = ev.get("new_value")
            if not isinstance(value, int | float):
                continue
            key = (ev["controller"]["id"], ev["tag"]["name"], round(value))
            self.seen.setdefault(key, (now, _unix(attached), _unix(ev["detected_at"])))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _unix(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def watch_loop(watch: EvidenceWatch, stop: asyncio.Event) -> None:
    while not stop.is_set():
        watch.poll()
        await asyncio.sleep(0.01)


async def load(writers: Writers, duration: float, first: int) -> list[tuple[str, str, int, float]]:
    """RATE writes/s for ``duration`` s, round robin over the controllers."""
    out: list[tuple[str, str, int, float]] = []
    start = time.monotonic()
    n = 0
    while (due := start + n / RATE) < start + duration:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        ctrl = writers.order[n % len(writers.order)]
        value = first + n
        tag, at = await writers.write(ctrl, value)
        out.append((ctrl, tag, value, at))
        n += 1
    return out


async def pipeline(ports: dict[str, int], db: Path, duration: float,
                   children: Children, agent_pid: int, classifier_pid: int) -> list[Result]:
    writers = Writers(ports)
    await writers.start()
    watch = EvidenceWatch(db)
    stop = asyncio.Event()
    poller = asyncio.create_task(watch_loop(watch, stop), name="bench-evidence-poll")
    try:
        # warm-up: one write per controller must come through (group joined, sessions up)
        warm = await load_once(writers, FIRST_VALUE)
        deadline = time.monotonic() + 90
        while not all((c, t, v) in watch.seen for c, t, v, _ in warm):
            children.check_alive()
            if time.monotonic() > deadline:
                got = sum((c, t, v) in watch.seen for c, t, v, _ in warm)
                raise TimeoutError(f"warm-up: {got} of {len(warm)} writes reached the records"
                                   " within 90 s")
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)
        cpu0 = {n: proc_cpu_s(p) for n, p in (("agent", agent_pid), ("classifier", classifier_pid))}
        t0 = time.monotonic()
        writes = await load(writers, duration, FIRST_VALUE + 10_000)
        span = time.monotonic() - t0
        cpu = {n: (proc_cpu_s(p) - cpu0[n]) / span
               for n, p in (("agent", agent_pid), ("classifier", classifier_pid))}
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline and not all(
            (c, t, v) in watch.seen for c, t, v, _ in writes
        ):
            await asyncio.sleep(0.05)
        children.check_alive()
    finally:
        stop.set()
        await asyncio.wait({poller}, timeout=5)
        watch.close()
        await writers.stop()
    return results(writes, watch, cpu, span)


async def load_once(writers: Writers, first: int) -> list[tuple[str, str, int, float]]:
    out = []
    for i, ctrl in enumerate(writers.order):
        tag, at = await writers.write(ctrl, first + i)
        out.append((ctrl, tag, first + i, at))
    return out


def results(writes: list[tuple[str, str, int, float]], watch: EvidenceWatch,
            cpu: dict[str, float], span: float) -> list[Result]:
    seen_lat, attached_lat, missing = [], [], 0
    detect, classify, commit = [], [], []
    by_proto: dict[str, list[float]] = {"modbus": [], "opcua": []}
    pipeline: dict[str, list[float]] = {"modbus": [], "opcua": []}
    for ctrl, tag, value, at in writes:
        got = watch.seen.get((ctrl, tag, value))
        proto = "opcua" if ctrl.startswith("opc-") else "modbus"
        if got is None:
            missing += 1
            seen_lat.append(float("inf"))
            by_proto[proto].append(float("inf"))
            pipeline[proto].append(float("inf"))
            continue
        pipeline[proto].append(got[0] - got[2])
        seen_lat.append(got[0] - at)
        attached_lat.append(got[1] - at)
        detect.append(got[2] - at)
        classify.append(got[1] - got[2])
        commit.append(got[0] - got[1])
        by_proto[proto].append(got[0] - at)
    p99 = percentile(seen_lat, 99) * 1000
    notes = [
        f"{len(writes)} writes in {span:.0f} s ({len(writes) / span:.1f}/s) over"
        f" {MODBUS} Modbus + {OPCUA} OPC UA controllers ({TAGS} tags); {missing} without"
        f" evidence {SETTLE_S:.0f} s after the load; {watch.rows} evidence rows seen in all",
        f"seen committed: p50 {percentile(seen_lat, 50) * 1000:.0f} ms, p99 {p99:.0f} ms,"
        f" max {max(seen_lat) * 1000:.0f} ms",
    ]
    if attached_lat:
        notes.append(
            f"classifier attached_at (before its commit): p50"
            f" {percentile(attached_lat, 50) * 1000:.0f} ms, p99"
            f" {percentile(attached_lat, 99) * 1000:.0f} ms"
        )
    if detect:
        parts = ", ".join(
            f"{what} p50 {percentile(xs, 50) * 1000:.0f} / p99 {percentile(xs, 99) * 1000:.0f} ms"
            for what, xs in (("write -> agent detected_at", detect),
                             ("detected_at -> attached_at (spool, publisher, broker, classifier)",
                              classify),
                             ("attached_at -> seen committed", commit))
        )
        notes.append(f"where the time goes: {parts}")
    for proto, lat in by_proto.items():
        if lat:
            notes.append(f"{proto}: {len(lat)} writes, p50 {percentile(lat, 50) * 1000:.0f} ms,"
                         f" p99 {percentile(lat, 99) * 1000:.0f} ms")
    notes.append(
        f"Modbus poll interval {POLL_S} s (config/agent.yaml's; default 1.0), OPC UA subscribe"
        f" 250 ms publishing (default); agent CPU {100 * cpu['agent']:.0f}% of a core,"
        f" classifier {100 * cpu['classifier']:.0f}%"
    )
    pipe_p99 = {proto: percentile(lat, 99) * 1000 for proto, lat in pipeline.items() if lat}
    pipe_notes = [
        f"{proto}: detected_at -> seen committed p50 {percentile(pipeline[proto], 50) * 1000:.0f}"
        f" ms, p99 {p:.0f} ms ({len(pipeline[proto])} writes)"
        for proto, p in pipe_p99.items()
    ]
    worst = max(pipe_p99.values(), default=float("inf"))
    out = [Result("e2e_latency_p99_ms", p99 if p99 != float("inf") else None, notes=notes),
           Result("e2e_pipeline_p99_ms", worst if worst != float("inf") else None,
                  notes=pipe_notes)]
    for res in out:
        if res.value is None:
            res.reason = (f"over 1% of the writes never reached the records ({missing} of"
                          f" {len(writes)})")
    return out


def measure(workdir: Path, duration: float) -> list[Result]:
    children = Children(workdir)
    broker = EmbeddedBroker(log_path=workdir / "broker.log")
    try:
        broker.start()
        ports: dict[str, int] = {}
        for i in range(SHARDS):
            ports.update(start_scale_sim(children, f"sim-{i}", MODBUS, OPCUA, TAGS, (i, SHARDS)))
        state = workdir / "agent"
        signer = agent_signing_key(state)
        agent_cfg = agent_config(ports, broker.bootstrap, state)
        (workdir / "agent.yaml").write_text(json.dumps(agent_cfg))
        db = workdir / "records.db"
        classifier_cfg = classifier_config(broker.bootstrap, db, signer)
        (workdir / "classifier.yaml").write_text(json.dumps(classifier_cfg))
        agent = children.python(
            "agent", ["agent.cli", "--log-level", "WARNING", "run",
                      "--config", str(workdir / "agent.yaml")]
        )
        classifier = children.python(
            "classifier", ["detectors.cli", "--log-level", "WARNING", "run",
                           "--config", str(workdir / "classifier.yaml")]
        )
        deadline = time.monotonic() + 120
        while not (state / "ready").exists():
            children.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError("the agent did not read every controller within 120 s:\n"
                                   + children.log_tail("agent", 8))
            time.sleep(0.2)
        return run_loop(  # type: ignore[no-any-return]
            pipeline(ports, db, duration, children, agent.pid, classifier.pid)
        )
    finally:
        children.stop_all()
        broker.stop()


def run(quick: bool) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        return measure(Path(tmp), 20.0 if quick else 60.0)


if __name__ == "__main__":
    child_main(KEYS, run)
