"""``scale_tags``, ``scale_scan_share``, ``scale_rss_mb``: one agent on the scale plant.

The plant: `simulators.scale.scale_plant(200, 20, 100_000)` (40,000 tags on 200 Modbus
controllers, 60,000 on 20 OPC UA servers), served by ``otwatch-sim run --scale ... --shard i/N``
in `SHARDS` processes (their CPU and peak RSS are notes: what the simulated plant costs). The
agent: the real ``otwatch-agent run`` (its own process, uvloop), watching every tag with the
product's default poll interval (1.0 s), its spool and publisher pointed at a fresh embedded
broker. Once the agent says every controller was read (its ready file), the benchmark scrapes
the agent's own metrics twice, ``window`` seconds apart:

* ``scale_tags``: the sum of ``otwatch_agent_tags_monitored`` (tags configured and watched);
* ``scale_scan_share``: per polled controller, its mean scan duration over the window
  (``otwatch_agent_read_seconds`` sum ÷ count) ÷ its poll period (1.0 s); the figure is the
  slowest controller's: how much of the schedule a scan takes (the period itself is the
  configured schedule, a note);
* ``scale_rss_mb``: the agent's resident set (VmRSS) at the end; the peak (VmHWM) is a note.

``--quick`` (or BENCH_SCALE_MODBUS_ONLY=1) keeps the Modbus part only when asked; by default
both protocols are on.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from simulators.broker import EmbeddedBroker, free_port
from simulators.plant import ModbusController, OpcUaController
from simulators.scale import scale_plant
from tests.bench._common import (
    Children,
    Result,
    child_main,
    modbus_agent_config,
    proc_cpu_s,
    proc_peak_rss_mb,
    proc_rss_mb,
    start_scale_sim,
)

KEYS = ["scale_tags", "scale_scan_share", "scale_rss_mb"]
MODBUS, OPCUA, TAGS = 200, 20, 100_000
SHARDS = 6
POLL_INTERVAL_S = 1.0  # the product default
#: How long the agent may take to read every controller once (220 sessions on 2 shared cores).
READY_LIMIT_S = 360.0
#: Request timeout (product default 2 s): six plant processes on two shared cores answer a
#: 3,000-node read in seconds while other work runs; what is measured is memory and scan
#: durations, not how a starved simulator times out.
REQUEST_TIMEOUT_S = 10.0
_SAMPLE = re.compile(r'^(\w+)\{controller="([^"]+)"\} (\S+)$', re.M)


def opcua_agent_config(ctrl: OpcUaController, port: int) -> dict[str, Any]:
    return {
        "id": ctrl.id,
        "protocol": "opcua",
        "endpoint": f"opc.tcp://127.0.0.1:{port}{ctrl.endpoint_path()}",
        "timeout_s": REQUEST_TIMEOUT_S,
        "tags": [
            {"name": t.name, "kind": "setpoint", "node": f"nsu={ctrl.namespace_uri};s={t.node}"}
            for t in ctrl.tags
        ],
    }


def agent_config(ports: dict[str, int], bootstrap: str, state: Path, opcua: bool) -> dict[str, Any]:
    plant = scale_plant(MODBUS, OPCUA, TAGS)
    controllers: list[dict[str, Any]] = []
    for ctrl in plant.controllers():
        if isinstance(ctrl, ModbusController):
            modbus = modbus_agent_config(ctrl, ports[ctrl.id], timeout_s=REQUEST_TIMEOUT_S)
            controllers.append(modbus.model_dump(mode="json"))
        elif opcua:
            controllers.append(opcua_agent_config(ctrl, ports[ctrl.id]))
    return {
        "agent": {"id": "edge-scale", "site": "scale", "state_dir": str(state)},
        "kafka": {"bootstrap_servers": bootstrap, "enable_idempotence": False},
        "metrics": {"host": "127.0.0.1", "port": free_port()},
        "controllers": controllers,
    }


def scrape(port: int) -> dict[str, dict[str, float]]:
    """{metric: {controller: value}} for the per-controller series of the agent."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, dict[str, float]] = {}
    for name, ctl, value in _SAMPLE.findall(text):
        out.setdefault(name, {})[ctl] = float(value)
    return out


def wait_ready(ready: Path, children: Children, timeout: float) -> float:
    start = time.monotonic()
    while not ready.exists():
        if time.monotonic() - start > timeout:
            raise TimeoutError(
                f"the agent did not read every controller within {timeout:.0f} s; agent log:\n"
                + children.log_tail("agent", 8)
            )
        children.check_alive()
        time.sleep(0.2)
    return time.monotonic() - start


def measure(workdir: Path, window: float, opcua: bool) -> list[Result]:
    children = Children(workdir)
    broker = EmbeddedBroker(log_path=workdir / "broker.log")
    try:
        broker.start()
        started = time.monotonic()
        ports: dict[str, int] = {}
        for i in range(SHARDS):  # started one after the other: 2 cores, OPC UA start-up is CPU
            ports.update(start_scale_sim(children, f"sim-{i}", MODBUS, OPCUA, TAGS, (i, SHARDS)))
        sim_s = time.monotonic() - started
        print(f"plant up in {sim_s:.0f} s", flush=True)
        state = workdir / "agent"
        cfg = agent_config(ports, broker.bootstrap, state, opcua)
        # JSON is YAML too; yaml.safe_dump of 50,000 tags takes minutes in pure Python
        (workdir / "agent.yaml").write_text(json.dumps(cfg))
        agent = children.python(
            "agent",
            ["agent.cli", "--log-level", "WARNING", "run", "--config", str(workdir / "agent.yaml")],
        )
        print(f"agent started (pid {agent.pid})", flush=True)
        ready_s = wait_ready(state / "ready", children, READY_LIMIT_S)
        time.sleep(2.0)  # let the first scans' change detection settle
        first, cpu0, t0 = scrape(cfg["metrics"]["port"]), proc_cpu_s(agent.pid), time.monotonic()
        time.sleep(window)
        second, cpu1, t1 = scrape(cfg["metrics"]["port"]), proc_cpu_s(agent.pid), time.monotonic()
        rss, peak = proc_rss_mb(agent.pid), proc_peak_rss_mb(agent.pid)
        sims = [p for name, p in children.procs if name.startswith("sim-")]
        plant_cost = (
            f"simulated plant: {len(sims)} processes, CPU"
            f" {sum(proc_cpu_s(p.pid) for p in sims) / (time.monotonic() - started):.2f} cores"
            f" on average since start, peak RSS {sum(proc_peak_rss_mb(p.pid) for p in sims):.0f}"
            " MB in all"
        )
        children.check_alive()
    finally:
        children.stop_all()
        broker.stop()
    out = results(cfg, first, second, rss, peak, (cpu1 - cpu0) / (t1 - t0), ready_s, window)
    out[0].notes.append(plant_cost)
    return out


def results(
    cfg: dict[str, Any], first: dict[str, dict[str, float]], second: dict[str, dict[str, float]],
    rss: float, peak: float, cpu_share: float, ready_s: float, window: float,
) -> list[Result]:
    tags = sum(second.get("otwatch_agent_tags_monitored", {}).values())
    last = "otwatch_agent_last_good_read_timestamp_seconds"
    count = "otwatch_agent_read_seconds_count"
    periods: dict[str, float] = {}
    subscribed = []  # OPC UA in subscribe mode reads in full once per session: no scan period
    for ctl in (c["id"] for c in cfg["controllers"]):
        scans = second[count].get(ctl, 0) - first[count].get(ctl, 0)
        span = second[last].get(ctl, 0) - first[last].get(ctl, 0)
        if scans <= 0 and ctl.startswith("opc-"):
            subscribed.append(ctl)
            continue
        periods[ctl] = span / scans if scans > 0 and span > 0 else float("inf")
    scan_s = {
        ctl: (second[f"{count[:-6]}_sum"][ctl] - first[f"{count[:-6]}_sum"][ctl])
        / max(1.0, second[count][ctl] - first[count][ctl])
        for ctl in periods
    }
    worst = max(periods, key=periods.__getitem__)
    slowest = max(scan_s, key=scan_s.__getitem__)
    by_proto: dict[str, list[str]] = {"modbus": [], "opcua": []}
    for c in cfg["controllers"]:
        by_proto[c["protocol"]].append(c["id"])
    notes = [
        f"{len(cfg['controllers'])} controllers; agent ready (every controller read once) after"
        f" {ready_s:.1f} s; window {window:.0f} s; poll_interval_s 1.0 (default); request"
        f" timeout_s {REQUEST_TIMEOUT_S:g} (default 2)",
        f"scan period (the schedule): slowest {worst} {periods[worst]:.3f} s, median"
        f" {statistics.median(periods.values()):.3f} s",
        f"scan duration: slowest {slowest} {scan_s[slowest] * 1000:.0f} ms, median"
        f" {statistics.median(scan_s.values()) * 1000:.0f} ms (mean per controller in the window)",
        f"agent CPU {100 * cpu_share:.0f}% of one core; peak RSS (VmHWM) {peak:.0f} MB",
    ]
    if subscribed:
        notes.append(f"{len(subscribed)} OPC UA controllers subscribe (mode: subscribe): no"
                     " periodic scan, left out of the scan period")
    for proto, ids in by_proto.items():
        ids = [i for i in ids if i in periods]
        if ids:
            notes.append(
                f"{proto}: {len(ids)} controllers, period max {max(periods[i] for i in ids):.3f} s,"
                f" scan duration mean {statistics.mean(scan_s[i] for i in ids) * 1000:.0f} ms,"
                f" max {max(scan_s[i] for i in ids) * 1000:.0f} ms"
            )
    return [
        Result("scale_tags", tags, notes=notes),
        Result("scale_scan_share", scan_s[slowest] / POLL_INTERVAL_S),
        Result("scale_rss_mb", rss),
    ]


def run(quick: bool) -> list[Result]:
    opcua = os.environ.get("BENCH_SCALE_MODBUS_ONLY", "") != "1"
    with tempfile.TemporaryDirectory() as tmp:
        return measure(Path(tmp), 10.0 if quick else 30.0, opcua)


if __name__ == "__main__":
    child_main(KEYS, run)
