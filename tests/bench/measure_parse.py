"""CPU per event of the classifier's message intake, and a paired A/B of two trees (not a test).

Alone, it prints a JSON line of CPU microseconds per event, each the median of 9 rounds of
``--events`` events:

- ``unsigned``: `parse_event` of the classifier benchmark's events (schema ``/1``, unsigned);
- ``signed``: `parse_event` of the same events as ``/2``, signed in Merkle batches of
  `MAX_TREE_SIZE` as agents sign them;
- ``snapshot``: `parse_event` of signed ``/2`` events with context and a 32-value snapshot;
- ``check``: `TrustedAgents.check` of the signed events, parsed, a fresh classifier each round
  (what the group consumer does);
- ``recheck``: the same check again on the same messages (what the integrity reader does).

Paired: ``--base DIR`` starts a worker of this file in DIR (its own ``.venv``, e.g. a
detached worktree of main) and one in this tree, alternates rounds between them ``--pairs``
times, and prints each metric's median per side and the median of the per-pair ratios (this
tree over the base). The machine's speed drifts by the minute: only such paired figures
compare two versions.

Run: ``.venv/bin/python tests/bench/measure_parse.py --base /work/wt/x-base``.

Measured 2026-12-02 (61 pairs, load ~7 on 2 cores; µs, main -> branch c-parse): unsigned
9.88 -> 9.24 (0.949), signed 16.02 -> 13.82 (0.860), snapshot 32.98 -> 29.81 (0.916), check
20.89 -> 18.43 (0.860), recheck 19.91 -> 2.83 (0.138). Same code on both sides read 0.98-1.01.
Imports only ``agent`` and ``detectors``, so the same file measures any tree.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from agent.contract import SCHEMA, EventSigner, SuspectChange
from detectors.messages import parse_event
from detectors.signatures import TrustedAgents

LIMIT = 1 << 20
METRICS = ("unsigned", "signed", "snapshot", "check", "recheck")


def _bodies(n: int) -> list[dict[str, Any]]:
    """The classifier benchmark's events (`tests.bench.classifier.event_values`' shape)."""
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    out = []
    for i in range(n):
        at = (now + timedelta(milliseconds=i // 100)).isoformat()
        ctl = f"plc-{i % 40:04d}"
        out.append({
            "schema": "otwatch.change/1", "event_id": f"01J{i:023d}", "seq": i + 1,
            "agent_id": "edge-bench", "site": "plant-1", "line": "line-1",
            "controller": {"id": ctl, "protocol": "modbus", "endpoint": "127.0.0.1:502",
                           "validated": i % 3 == 0},
            "tag": {"name": f"sp_{i % 7}", "address": f"holding:{i % 7}", "kind": "setpoint",
                    "critical_to_quality": i % 2 == 0, "unit": "degC"},
            "old_value": float(i), "new_value": float(i + 1), "occurred_at": at,
            "detected_at": at, "change_kind": "setpoint_change", "verdict": "unapproved",
            "verdict_reason": f"no approved change record for {ctl}/sp_{i % 7}",
        })
    return out


def _signed(signer: EventSigner, bodies: list[dict[str, Any]], **extra: Any) -> list[bytes]:
    events = [SuspectChange.model_validate({**b, "schema": SCHEMA, **extra}) for b in bodies]
    return signer.batch_messages(events)


def _cpu_us(work: Callable[[], object], n: int) -> float:
    """CPU µs per event of ``work`` (garbage collection off: its pauses land anywhere)."""
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        work()
        return (time.process_time() - start) / n * 1e6
    finally:
        gc.enable()


def _parsing(values: list[bytes]) -> Callable[[], object]:
    return lambda: [parse_event(v) for v in values]


def _judging(trusted: TrustedAgents, values: list[bytes], events: list[SuspectChange],
             out: list[object]) -> Callable[[], object]:
    """A check of every message by ``trusted``, as the classifier checks each (into ``out``)."""
    return lambda: out.extend(trusted.check(v, e) for v, e in zip(values, events, strict=True))


class Intake:
    """The messages of one measurement, made once; `round` measures each metric once."""

    def __init__(self, events: int) -> None:
        signer = EventSigner.generate()
        self.keys = {signer.key_id: signer.public_key_b64}
        self.events = events
        bodies = _bodies(events)
        self.unsigned = [orjson.dumps(b) for b in bodies]
        self.signed = _signed(signer, bodies)
        self.snapshot = _signed(signer, bodies, context={"lot": "L-17", "batch": 4},
                                snapshot={"values": {f"sp_{k}": float(k) for k in range(32)},
                                          "sha256": "ab" * 32})
        self.parsed = [parse_event(v) for v in self.signed]

    def round(self) -> dict[str, float]:
        """CPU µs per event of each metric, once (a fresh classifier's checks)."""
        n = self.events
        laps = {name: _cpu_us(_parsing(values), n)
                for name, values in (("unsigned", self.unsigned), ("signed", self.signed),
                                     ("snapshot", self.snapshot))}
        checks: list[object] = []
        judge = _judging(TrustedAgents(self.keys, require_signed=True), self.signed,
                         self.parsed, checks)
        laps["check"] = _cpu_us(judge, n)
        laps["recheck"] = _cpu_us(judge, n)
        assert not any(checks), "every signed event verifies"
        return laps


def serve(events: int) -> None:
    """One JSON line of `Intake.round` per line read: a worker of `paired`."""
    intake = Intake(events)
    print("ready", flush=True)
    for _ in sys.stdin:
        print(json.dumps(intake.round()), flush=True)


def paired(base: Path, here: Path, pairs: int, events: int) -> None:
    """Rounds alternated between a worker in ``base`` and one in ``here`` (which goes first
    alternates too), so the machine's drift falls on both sides of each pair alike."""
    workers = {name: subprocess.Popen(
        [str(root / ".venv/bin/python"), str(Path(__file__).resolve()), "--serve",
         "--events", str(events)],
        cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) for name, root in (("base", base), ("this", here))}
    try:
        runs: dict[str, list[dict[str, float]]] = {"base": [], "this": []}
        for worker in workers.values():
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        for i in range(pairs):
            for name in ("base", "this")[:: 1 if i % 2 == 0 else -1]:
                worker = workers[name]
                assert worker.stdin is not None and worker.stdout is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
                runs[name].append(json.loads(worker.stdout.readline()))
    finally:
        for worker in workers.values():
            if worker.stdin is not None:
                worker.stdin.close()
            worker.wait(timeout=60)
    print(f"{'metric':10} {'base us':>9} {'this us':>9} {'ratio':>7}   "
          f"(medians of {pairs} pairs of {events}-event rounds)")
    for m in METRICS:
        a = [r[m] for r in runs["base"]]
        b = [r[m] for r in runs["this"]]
        ratio = statistics.median(y / x for x, y in zip(a, b, strict=True))
        print(f"{m:10} {statistics.median(a):9.2f} {statistics.median(b):9.2f} {ratio:7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", action="store_true", help="a worker of --base")
    parser.add_argument("--base", type=Path, help="the other tree (with its own .venv)")
    parser.add_argument("--this", type=Path, default=Path(__file__).resolve().parents[2],
                        help="the tree compared with --base (default: this file's)")
    parser.add_argument("--pairs", type=int, default=41)
    parser.add_argument("--events", type=int, default=1024)
    args = parser.parse_args()
    if args.serve:
        serve(args.events)
    elif args.base is not None:
        paired(args.base, args.this, args.pairs, args.events)
    else:
        intake = Intake(args.events)
        print(json.dumps({m: statistics.median(r[m] for r in [intake.round() for _ in range(9)])
                          for m in METRICS}))


if __name__ == "__main__":
    main()
