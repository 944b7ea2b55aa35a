"""CPU per event of the classifier's two readers of the suspect topic, in step (not a test).

Run: ``.venv/bin/python -m tests.bench.measure_two_readers [--events N] [--batch B]``.

What the group consumer (`SuspectConsumer._judge`: parse, judge) and the integrity reader
(`IntegrityReader._saw`: parse, judge, count the seq) do with every message of the suspect
topic, batch by batch on the classifier benchmark's events (`tests.bench.classifier
.event_values`), each reader with its own copy of the bytes, as on live traffic where both
are caught up; no broker, no store. Prints CPU microseconds per event for both readers
together, with the integrity reader first and with the group consumer first.
"""

from __future__ import annotations

import argparse
import inspect
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from agent.runtime.gc_tuning import CLASSIFIER_THRESHOLDS, tune_for_throughput
from detectors import health
from detectors.config import ClassifierConfig, IntegritySection
from detectors.criteria import load_criteria
from detectors.integrity_reader import IntegrityReader
from detectors.signatures import TrustedAgents
from detectors.suspects import SuspectConsumer
from tests.bench._common import ROOT
from tests.bench.classifier import event_values

CONFIG = ClassifierConfig(integrity=IntegritySection(start_from="earliest"))
TP = TopicPartition(CONFIG.topics.suspect, 0)


def _messages(values: list[bytes], first: int) -> list[Any]:
    return [SimpleNamespace(topic=TP.topic, partition=0, offset=offset,
                            value=bytes(bytearray(value)), timestamp=-1)
            for offset, value in enumerate(values, first)]


def _run(values: list[bytes], batch: int, watch_first: bool) -> float:
    now = datetime.now(UTC)
    trusted = TrustedAgents({}, require_signed=False)
    status = health.Status(None)
    reader = IntegrityReader(CONFIG, None, trusted, status, lambda: now)  # type: ignore[arg-type]
    consumer = SuspectConsumer(
        CONFIG, load_criteria(ROOT / "config" / "criteria.yaml").burst,
        None, None, trusted, status, lambda: now,  # type: ignore[arg-type]
    )
    # (a tree before the shared parse took "is it the heartbeat topic" where it takes the tp)
    where: Any = TP if "tp" in inspect.signature(IntegrityReader._saw).parameters else False
    batches = [(_messages(values[i:i + batch], i), _messages(values[i:i + batch], i))
               for i in range(0, len(values), batch)]
    start = time.process_time()
    for watched, judged in batches:
        if watch_first:
            reader._saw(where, watched, now)
        consumer._judge({TP: judged}, now)
        if not watch_first:
            reader._saw(where, watched, now)
    return (time.process_time() - start) / len(values) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    values = [value for _, value in event_values(args.events)]
    tune_for_throughput(CLASSIFIER_THRESHOLDS)  # as `Classifier.run` does
    for watch_first in (True, False):
        first = "integrity reader" if watch_first else "group consumer"
        cpu = _run(values, args.batch, watch_first)
        print(f"{first} first: {cpu:.2f} CPU us/event (both readers)", flush=True)


if __name__ == "__main__":
    main()
