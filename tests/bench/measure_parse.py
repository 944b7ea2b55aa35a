"""CPU per event of the classifier's message intake, and a paired A/B of two trees (not a test).

One run (``--one``) prints a JSON line of CPU microseconds per event, each the median over
``--rounds`` rounds of ``--events`` events:

- ``unsigned``: `parse_event` of the classifier benchmark's events (schema ``/1``, unsigned);
- ``signed``: `parse_event` of the same events as ``/2``, signed in Merkle batches of
  `MAX_TREE_SIZE` as agents sign them;
- ``snapshot``: `parse_event` of signed ``/2`` events with context and a 32-value snapshot;
- ``check``: `TrustedAgents.check` of the signed events, parsed, a fresh classifier each round
  (what the group consumer does);
- ``recheck``: the same check again on the same messages (what the integrity reader does).

Paired: ``--base DIR`` alternates runs of this file in DIR (its own ``.venv``, e.g. a detached
worktree of main) and in this tree, ``--pairs`` times each, and prints each metric's median of
the pairs and the median of the per-pair ratios (this tree over the base). The machine's speed
drifts: only such paired figures compare two versions.

Run: ``.venv/bin/python tests/bench/measure_parse.py --pairs 7 --base /work/wt/x-base``.
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


def _judging(trusted: TrustedAgents, values: list[bytes], events: list[SuspectChange],
             out: list[object]) -> Callable[[], object]:
    """A check of every message by ``trusted``, as the classifier checks each (into ``out``)."""
    return lambda: out.extend(trusted.check(v, e) for v, e in zip(values, events, strict=True))


def one(events: int, rounds: int) -> dict[str, float]:
    """Each metric's median over ``rounds``, in CPU µs per event."""
    signer = EventSigner.generate()
    keys = {signer.key_id: signer.public_key_b64}
    bodies = _bodies(events)
    unsigned = [orjson.dumps(b) for b in bodies]
    signed = _signed(signer, bodies)
    snapshot = _signed(signer, bodies, context={"lot": "L-17", "batch": 4},
                       snapshot={"values": {f"sp_{k}": float(k) for k in range(32)},
                                 "sha256": "ab" * 32})
    parsed = [parse_event(v) for v in signed]
    laps: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(rounds):
        laps["unsigned"].append(_cpu_us(lambda: [parse_event(v) for v in unsigned], events))
        laps["signed"].append(_cpu_us(lambda: [parse_event(v) for v in signed], events))
        laps["snapshot"].append(_cpu_us(lambda: [parse_event(v) for v in snapshot], events))
        checks: list[object] = []
        judge = _judging(TrustedAgents(keys, require_signed=True), signed, parsed, checks)
        laps["check"].append(_cpu_us(judge, events))
        laps["recheck"].append(_cpu_us(judge, events))
        assert not any(checks), "every signed event verifies"
    return {m: statistics.median(v) for m, v in laps.items()}


def paired(base: Path, pairs: int, events: int, rounds: int) -> None:
    here = Path(__file__).resolve().parents[2]
    script = Path(__file__).resolve()
    runs: dict[str, list[dict[str, float]]] = {"base": [], "this": []}
    for i in range(pairs):
        for name, root in (("base", base), ("this", here))[:: 1 if i % 2 == 0 else -1]:
            out = subprocess.run(
                [str(root / ".venv/bin/python"), str(script), "--one", "--events", str(events),
                 "--rounds", str(rounds)],
                cwd=root, check=True, capture_output=True, text=True,
            ).stdout
            runs[name].append(json.loads(out.splitlines()[-1]))
            print(name, out.strip(), file=sys.stderr)
    print(f"{'metric':10} {'base us':>9} {'this us':>9} {'ratio':>7}   (medians of {pairs} pairs)")
    for m in METRICS:
        a = [r[m] for r in runs["base"]]
        b = [r[m] for r in runs["this"]]
        ratio = statistics.median(y / x for x, y in zip(a, b, strict=True))
        print(f"{m:10} {statistics.median(a):9.2f} {statistics.median(b):9.2f} {ratio:7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--one", action="store_true", help="one run: a JSON line")
    parser.add_argument("--base", type=Path, help="the other tree (with its own .venv)")
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--events", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    if args.base is not None:
        paired(args.base, args.pairs, args.events, args.rounds)
    else:
        print(json.dumps(one(args.events, args.rounds)))


if __name__ == "__main__":
    main()
