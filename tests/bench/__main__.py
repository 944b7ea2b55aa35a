"""``python -m tests.bench [--only KEY ...] [--quick]``: run the benchmarks, print, write JSON.

Each benchmark module runs in a child process (``python -m tests.bench.<module>``) bounded by a
time limit; on overrun the child is killed by its PID and its keys are null with the reason.
The figures go to ``$BENCH_OUT`` (default ``bench-results.json``): one number or null per key.
Baselines, reasons and notes go to ``<BENCH_OUT without .json>.details.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench._common import BARS, ROOT, cpu_info, stop_pid

#: (module, keys, time limit in s for a full run, for a quick run); in the order of issue 9.
BENCHMARKS: list[tuple[str, list[str], float, float]] = [
    ("spool_drain", ["spool_drain_events_per_s", "spool_drain_vs_bare_ratio"], 240, 120),
    ("classifier", ["classifier_events_per_s", "classifier_vs_bare_ratio",
                    "classifier_pg_vs_bare_ratio"], 600, 240),
    ("modbus_scan", ["modbus_scan_ratio"], 180, 120),
    ("scale", ["scale_tags", "scale_scan_share", "scale_rss_mb"], 720, 720),
    ("opcua", ["opcua_latency_p99_ms", "opcua_cpu_ratio"], 300, 180),
    ("e2e", ["e2e_latency_p99_ms", "e2e_pipeline_p99_ms"], 300, 180),
    ("worklist", ["worklist_10k_ms", "worklist_10k_filtered_ms"], 300, 240),
]


def run_module(module: str, keys: list[str], quick: bool, limit_s: float) -> list[dict[str, Any]]:
    load = Path("/proc/loadavg").read_text().split()[0]  # other work on the machine skews figures
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [sys.executable, "-m", f"tests.bench.{module}", "--out", str(out)]
        if quick:
            cmd.append("--quick")
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
        try:
            proc.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            # 60 s: on SIGTERM the child stops its own children (the scale part's 6 plant
            # shards, TERM then KILL each); killed after 10 s, it left them running.
            stop_pid(proc, f"tests.bench.{module}", timeout=60)
            return [_null(k, f"over its time limit of {limit_s:.0f} s: stopped") for k in keys]
        if not out.exists():
            return [_null(k, f"the benchmark exited with {proc.returncode}") for k in keys]
        rows: list[dict[str, Any]] = json.loads(out.read_text())
        for row in rows:  # a figure that is not finite (nothing measured in time) is no figure
            if isinstance(row["value"], float) and not math.isfinite(row["value"]):
                row["reason"] = f"not finite ({row['value']}): nothing completed in the window"
                row["value"] = row["ratio"] = row["met"] = None
        for row in rows[:1]:
            row["notes"].append(f"1-min load average before the run: {load}")
        return rows


def _null(key: str, reason: str) -> dict[str, Any]:
    return {"key": key, "value": None, "baseline": None, "baseline_what": "", "reason": reason,
            "notes": [], "ratio": None, "met": None, "bar": " ".join(map(str, BARS[key][:2]))}


def fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "NO"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def print_table(rows: list[dict[str, Any]]) -> None:
    head = ("key", "value", "baseline", "ratio", "bar", "met?")
    body = [
        (r["key"], fmt(r["value"]), fmt(r["baseline"]), fmt(r["ratio"]), r["bar"],
         "n/a" if r["met"] is None else fmt(r["met"]))
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*head))
    print(line.format(*("-" * w for w in widths)))
    for b in body:
        print(line.format(*b))
    print()
    for r in rows:
        if r["value"] is None:
            print(f"{r['key']}: not measured: {r['reason']}")
        if r["baseline_what"] and r["baseline"] is not None:
            print(f"{r['key']}: baseline = {r['baseline_what']}")
        for note in r["notes"]:
            print(f"  {r['key']}: {note}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--only", nargs="+", metavar="KEY", help="keys (or module names) to run")
    parser.add_argument("--quick", action="store_true", help="shorter runs for a smoke test")
    args = parser.parse_args()
    wanted = set(args.only or [])
    known = {k for _, keys, _, _ in BENCHMARKS for k in keys} | {m for m, *_ in BENCHMARKS}
    if wanted - known:
        parser.error(f"unknown keys {sorted(wanted - known)}; known: {sorted(known)}")
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    for module, keys, full_s, quick_s in BENCHMARKS:
        if wanted and module not in wanted and not wanted & set(keys):
            continue
        print(f"== {module} ...", flush=True)
        t0 = time.monotonic()
        got = run_module(module, keys, args.quick, quick_s if args.quick else full_s)
        rows.extend(r for r in got if not wanted or module in wanted or r["key"] in wanted)
        print(f"   done in {time.monotonic() - t0:.0f} s", flush=True)
    print()
    print_table(rows)
    out = Path(os.environ.get("BENCH_OUT", "bench-results.json"))
    out.write_text(json.dumps({r["key"]: r["value"] for r in rows}, indent=2) + "\n")
    details = out.with_name(out.name.removesuffix(".json") + ".details.json")
    meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": cpu_info(),
            "quick": args.quick, "python": sys.version.split()[0],
            "total_s": round(time.monotonic() - started, 1)}
    details.write_text(json.dumps({"run": meta, "results": rows}, indent=2) + "\n")
    print(f"\nwrote {out} and {details} ({meta['total_s']:.0f} s, {meta['machine']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
