"""What every benchmark shares: the result row, bars, child processes, clocks and percentiles."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

#: key -> (operator, bar, unit); the bars of issue 9.
BARS: dict[str, tuple[str, float, str]] = {
    "spool_drain_events_per_s": (">=", 5000, "events/s"),
    "spool_drain_vs_bare_ratio": (">=", 0.8, "ratio"),
    "classifier_events_per_s": (">=", 20000, "events/s"),
    "classifier_vs_bare_ratio": (">=", 0.15, "ratio"),
    "classifier_pg_vs_bare_ratio": (">=", 0.10, "ratio"),
    "modbus_scan_ratio": (">=", 0.95, "ratio"),
    "scale_tags": (">=", 100000, "tags"),
    "scale_scan_share": ("<=", 0.10, "ratio"),
    "scale_rss_mb": ("<=", 300, "MB"),
    "opcua_latency_p99_ms": ("<=", 150, "ms"),
    "opcua_cpu_ratio": ("<=", 2.0, "ratio"),
    "e2e_latency_p99_ms": ("<=", 1000, "ms"),
    "e2e_pipeline_p99_ms": ("<=", 150, "ms"),
    "worklist_10k_ms": ("<=", 500, "ms"),
    "worklist_10k_filtered_ms": ("<=", 500, "ms"),
}


@dataclass
class Result:
    """One key of the results file, with what it was compared against."""

    key: str
    value: float | None
    baseline: float | None = None
    baseline_what: str = ""
    reason: str = ""  # why value is None
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        """value ÷ baseline; for the keys that are ratios already, the value itself."""
        if self.value is not None and BARS[self.key][2] == "ratio":
            return self.value
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        op, bar, _ = BARS[self.key]
        return self.value >= bar if op == ">=" else self.value <= bar

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(ratio=self.ratio, met=self.met, bar=" ".join(map(str, BARS[self.key][:2])))
        return out


def failed(keys: Sequence[str], reason: str) -> list[Result]:
    return [Result(k, None, reason=reason) for k in keys]


# --- clocks and statistics -------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (and its reaped children) from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # fields[0] is field 3 (state); utime, stime are fields 14, 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def proc_peak_rss_mb(pid: int) -> float:
    """VmHWM: the peak resident set size."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_info() -> str:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} CPUs, {model}"


# --- child processes (started and stopped by PID) -------------------------------------------


class Children:
    """Processes a benchmark started; `stop_all` ends each by its PID (TERM, then KILL)."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(self, name: str, args: Sequence[str], **kw: Any) -> subprocess.Popen[bytes]:
        log = open(self.logdir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            list(args), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, **kw
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    def python(self, name: str, module_args: Sequence[str], **kw: Any) -> subprocess.Popen[bytes]:
        return self.spawn(name, [sys.executable, "-m", *module_args], **kw)

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.logdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} (pid {proc.pid}) exited with {proc.returncode}:\n{self.log_tail(name)}"
                )

    def stop_all(self) -> None:
        for name, proc in reversed(self.procs):
            stop_pid(proc, name)
        self.procs.clear()


def stop_pid(proc: subprocess.Popen[bytes], name: str = "", timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  {name} (pid {proc.pid}) did not stop in {timeout:.0f} s: killed", file=sys.stderr)
        proc.kill()
        proc.wait(timeout=5)


def wait_for_json(path: Path, children: Children, timeout: float) -> Any:
    """The JSON a child writes when it is ready (e.g. a ports file)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            try:
                return json.loads(path.read_text())
            except json.JSONDecodeError:
                pass
        children.check_alive()
        time.sleep(0.05)
    raise TimeoutError(f"{path} did not appear within {timeout:.0f} s")


def run_loop(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run under uvloop, as the agent's and the classifier's CLIs do."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)


def quiet_logs() -> None:
    import logging

    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    for name in ("pymodbus", "asyncua", "aiokafka", "agent", "detectors"):
        logging.getLogger(name).setLevel(logging.ERROR)


def child_main(keys: Sequence[str], run: Callable[[bool], list[Result]]) -> None:
    """``python -m tests.bench.<module> [--quick] [--out FILE]``: run, print, write the rows."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    # SIGTERM (the runner's time limit) unwinds like an exception: every finally stops its PIDs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    quiet_logs()
    try:
        results = run(args.quick)
    except Exception as exc:  # a benchmark that cannot run reports why, with null figures
        import traceback

        traceback.print_exc()
        results = failed(keys, f"{type(exc).__name__}: {exc}")
    rows = [r.as_dict() for r in results]
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))
    for row in rows:
        print(json.dumps(row))


# --- the simulated plant in processes of its own ------------------------------------------


def start_scale_sim(
    children: Children, name: str, modbus: int, opcua: int, tags: int,
    shard: tuple[int, int] = (0, 1),
    timeout: float = 120.0,
) -> dict[str, int]:
    """Serve (a shard of) the generated scale plant in a child process; returns its ports."""
    ports_file = children.logdir / f"{name}-ports.json"
    children.python(
        name,
        ["simulators.cli", "run", "--scale", f"{modbus},{opcua},{tags}",
         "--shard", f"{shard[0]}/{shard[1]}", "--no-process", "--ports-file", str(ports_file)],
    )
    ports: dict[str, int] = wait_for_json(ports_file, children, timeout)
    return ports


def modbus_agent_config(ctrl: Any, port: int, **extra: Any) -> Any:
    """The agent's config for one simulated Modbus controller (plant tag -> agent tag)."""
    from agent.sources.modbus import ModbusControllerConfig

    tags = [
        {
            "name": t.name,
            "address": t.address,
            "data_type": t.type.value,
            "word_order": t.word_order.value,
            "scale": 1.0 / t.scale,
            "kind": "setpoint",
        }
        for t in ctrl.tags
    ]
    return ModbusControllerConfig(
        id=ctrl.id, protocol="modbus", port=port, device_id=ctrl.device_id, tags=tags, **extra
    )
