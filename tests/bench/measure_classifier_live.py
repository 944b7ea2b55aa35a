"""Where the live classifier's CPU goes, per thread and per part, on the benchmark's events.

Not a test.

Run: ``.venv/bin/python -m tests.bench.measure_classifier_live [--seconds S] [--window W]
[--py-spy PATH [--rate HZ] [--raw OUT]]``.

The real `detectors.service.Classifier` runs on SQLite against an embedded broker holding the
events of ``classifier_events_per_s`` (`tests.bench.classifier`: same topic, same events, same
configuration), and is measured from its first processed event for ``--seconds``. Prints the
process's CPU microseconds per event and each thread's (the event loop's thread and the records
worker, `RetryingStore.call`), with their context switches, per ``--window`` and for the whole
run, and the consumer's batch sizes. With ``--py-spy`` (a py-spy binary, e.g. in a throwaway
venv under /tmp: never a project dependency) it samples this process during the measured time
(``--nonblocking``: the classifier is never paused) and prints the share of each part: the
records transaction (worker thread), parse and judge, bursts, classify, encoding the alerts and
record events, aiokafka's consumer (fetch, decode) and producer (requests), offset commits, and
the rest (the event loop, uvloop's C code included). Samples count a thread that is runnable
but waits for a core, so on a loaded machine the shares lean to the busier thread: read them
next to the per-thread CPU.

What it showed (2026-12-02, this 2-core machine, SQLite, the benchmark's events): the live
process costs 43.9 µs CPU per event at load 0.7 (20,333/s, 0.89 cores) and 47.8-57 µs at load
2-15, against the classifier's own work without a broker (`measure_classifier_cpu`) of 47-52
µs measured alongside: aiokafka's consumer, its producer, the offset commits and the rest of
the pipeline take ~5 µs of it, not ~45. The records worker's Python work and the event loop's
thread share the GIL: the process tops out near one core.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.kafka.settings import KafkaSettings
from detectors import suspects
from detectors.config import ClassifierConfig, ClassifierSection
from detectors.criteria import load_criteria
from detectors.records import open_store
from detectors.service import Classifier
from detectors.store_retry import RetryingStore
from simulators.broker import EmbeddedBroker
from tests.bench._common import ROOT, quiet_logs, run_loop
from tests.bench.classifier import prefill

_TICK = os.sysconf("SC_CLK_TCK")

#: The parts a py-spy sample is counted in: the first whose test matches (thread, frames).
PARTS: list[tuple[str, Callable[[str, str], bool]]] = [
    ("records transaction (worker thread)", lambda thread, _s: "MainThread" not in thread),
    ("offset commits", lambda _t, s: "SuspectConsumer._commit " in s or "_do_commit_offsets" in s),
    ("aiokafka consumer (fetch, decode)", lambda _t, s: "aiokafka/consumer" in s),
    ("aiokafka producer (requests, acks)", lambda _t, s: "aiokafka/" in s),
    ("dead letters", lambda _t, s: "DeadLetters" in s),
    ("parse and judge", lambda _t, s: "SuspectConsumer._judge " in s),
    ("bursts", lambda _t, s: "correlate.py" in s and "SuspectConsumer._on_batch " in s),
    ("classify", lambda _t, s: "classify_placed " in s),
    ("alerts and record events (encode, batch)", lambda _t, s: "Recorder.publish " in s),
    ("metrics, status", lambda _t, s: "prometheus_client" in s or "detectors/health" in s),
    ("logging", lambda _t, s: "logging/" in s),
    ("the rest of the pipeline (suspects)", lambda _t, s: "detectors/suspects.py" in s),
    ("event loop, uvloop C, other", lambda _t, _s: True),
]


def _threads() -> dict[int, tuple[str, float, int, int]]:
    """Per thread of this process: name, CPU s, voluntary and involuntary context switches."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
            status = Path(f"/proc/self/task/{tid}/status").read_text()
        except OSError:  # (ended meanwhile)
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        switches = dict(
            line.split(":\t") for line in status.splitlines() if "ctxt_switches" in line
        )
        out[int(tid)] = (
            names.get(int(tid), stat[stat.index("(") + 1: stat.rindex(")")]),
            (int(fields[11]) + int(fields[12])) / _TICK,
            int(switches.get("voluntary_ctxt_switches", 0)),
            int(switches.get("nonvoluntary_ctxt_switches", 0)),
        )
    return out


def _per_thread(before: dict[int, tuple[str, float, int, int]], events: int) -> str:
    after = _threads()
    shown = []
    for tid, (name, cpu, vol, invol) in sorted(after.items()):
        _, cpu0, vol0, invol0 = before.get(tid, (name, 0.0, 0, 0))
        if cpu - cpu0 >= 0.01:
            shown.append(f"{name} {(cpu - cpu0) / events * 1e6:.1f} µs"
                         f" ({vol - vol0} + {invol - invol0} switches)")
    return "; ".join(shown)


def parts_table(raw: Path) -> list[tuple[str, float]]:
    """Each part's share of the samples of a py-spy ``--format raw`` file (``--threads``)."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        thread = stack.split(";", 1)[0]
        name = next(name for name, test in PARTS if test(thread, stack))
        counts[name] += int(count)
    total = sum(counts.values()) or 1
    return [(name, count / total) for name, count in counts.most_common()]


async def measure(args: argparse.Namespace) -> None:
    n = int(20_000 * args.seconds * 1.5)
    sizes: list[int] = []
    on_batch = suspects.SuspectConsumer._on_batch

    async def counted(self: Any, consumer: Any, batches: Any) -> None:
        sizes.append(sum(len(messages) for messages in batches.values()))
        await on_batch(self, consumer, batches)

    suspects.SuspectConsumer._on_batch = counted  # type: ignore[method-assign]
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        settings = KafkaSettings(
            bootstrap_servers=broker.bootstrap, client_id="bench", enable_idempotence=False
        )
        await prefill(settings, n)
        target = str(Path(tmp) / "records.db")
        config = ClassifierConfig(
            classifier=ClassifierSection(
                group_id="bench-classifier", records_db=target,
                criteria=ROOT / "config" / "criteria.yaml", require_signed_events=False,
            ),
            kafka=settings,
        )
        with open_store(target) as store:
            store.migrate()
            criteria = load_criteria(config.classifier.criteria)
            classifier = Classifier(config, criteria, RetryingStore(target, store=store))
            task = asyncio.create_task(classifier.run())
            try:
                while classifier.processed == 0:
                    await asyncio.sleep(0.01)
                await _sample(classifier, args, n)
            finally:
                classifier.stop()
                await asyncio.wait({task}, timeout=15)
    got = [size for size in sizes if size]
    print(f"batches read: {len(got)}, median {statistics.median(got):.0f} events")


async def _sample(classifier: Classifier, args: argparse.Namespace, n: int) -> None:
    spy = None
    if args.py_spy:
        spy = await asyncio.create_subprocess_exec(  # (this process, sampled, never paused)
            args.py_spy, "record", "-p", str(os.getpid()), "-r", str(args.rate), "-f", "raw",
            "-o", str(args.raw), "--threads", "--nonblocking", "-d", str(int(args.seconds)),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
    start, count0, cpu0, threads0 = time.perf_counter(), classifier.processed, \
        time.process_time(), _threads()
    while time.perf_counter() - start < args.seconds and classifier.processed < n:
        at, cpu, threads = classifier.processed, time.process_time(), _threads()
        await asyncio.sleep(args.window)
        done = max(1, classifier.processed - at)
        print(f"  window: {done:,} events, {(time.process_time() - cpu) / done * 1e6:.1f} µs"
              f" CPU each: {_per_thread(threads, done)}", flush=True)
    elapsed, done = time.perf_counter() - start, max(1, classifier.processed - count0)
    cpu = time.process_time() - cpu0
    print(f"measured: {done:,} events in {elapsed:.1f} s ({done / elapsed:,.0f}/s), {cpu:.2f}"
          f" CPU-s ({cpu / elapsed:.2f} cores), {cpu / done * 1e6:.1f} µs CPU per event:"
          f" {_per_thread(threads0, done)}")
    if spy is not None:
        await spy.wait()
        us = cpu / done * 1e6
        print("\n| part | share of samples | ≈ µs of the process's CPU per event |")
        print("| --- | --- | --- |")
        for name, share in parts_table(args.raw):
            print(f"| {name} | {share * 100:.1f}% | {share * us:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--py-spy", help="a py-spy binary (e.g. /tmp/spy/bin/py-spy)")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--raw", type=Path, default=Path(tempfile.gettempdir()) / "live.raw")
    quiet_logs()
    run_loop(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
