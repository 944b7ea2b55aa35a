"""``classifier_events_per_s``, ``classifier_vs_bare_ratio`` and ``classifier_pg_vs_bare_ratio``.

A fresh Tansu broker (separate process) holds N suspect events on the product's topic (6
partitions), written before any clock starts: N = 20,000 x duration, enough to keep a classifier
at the bar busy for the whole duration. Events spread over 1,000 controllers of one line,
half of them critical to quality, detected in the last minute (a new instant every 10 events):
a flood across a line, as an attacker's or a site-wide recipe reload would be. The burst
correlator makes it one incident, so the first event opens one master record and every later
one attaches to it as evidence (the note's "1 master records open"): the attach path is what
this measures, with its per-event row, evidence and trail entry.

Measured: the real `detectors.service.Classifier` (consume, parse, classify against
config/criteria.yaml, record into SQLite, publish alerts and record events, commit offsets) in
this process, from its first processed event for ``duration`` s (the group join is excluded).
The same classifier is then measured again on PostgreSQL (the production store: the test
database at ``OTWATCH_TEST_PG``, default ``postgresql://postgres@127.0.0.1:5432/test``, in a
schema of its own, dropped afterwards), reading the same topic from the start in a group of its
own. Baseline, same topic, same run: a bare aiokafka group consumer that validates every
message with ``SuspectChange.model_validate_json`` (no classification, no store, no producer).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from agent.contract import SuspectChange
from agent.kafka.settings import KafkaSettings
from agent.kafka.topics import ensure_topics
from agent.reports import new_event_id
from detectors.config import ClassifierConfig, ClassifierSection
from detectors.criteria import load_criteria
from detectors.records import open_store
from detectors.service import Classifier
from detectors.store_retry import RetryingStore
from simulators.broker import EmbeddedBroker
from tests.bench._common import ROOT, Result, child_main, run_loop
from tests.bench.opcua import GcByGeneration

KEYS = ["classifier_events_per_s", "classifier_vs_bare_ratio", "classifier_pg_vs_bare_ratio"]
PG_DSN = os.environ.get("OTWATCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
TOPIC = "otwatch.changes.suspect"
CONTROLLERS = 1_000
#: Events per detection instant: a new instant (1 ms later) every this many events, so the
#: classifier's per-instant caches (time text, off-hours, the batch's times) hit as they would
#: on a plant's scans, not on every event as when all events shared one instant (until
#: 2026-12-01; that flattered those caches).
EVENTS_PER_INSTANT = 10


def event_values(n: int) -> list[tuple[bytes, bytes]]:
    """N (key, value) messages: valid `otwatch.change/1` events, built from one template, with
    event ids as the agent makes them (`agent.reports.new_event_id`: time-ordered) and a
    detection instant per `EVENTS_PER_INSTANT` events, the last one now."""
    first = datetime.now(UTC) - timedelta(milliseconds=(n - 1) // EVENTS_PER_INSTANT)
    out = []
    for i in range(n):
        if i % EVENTS_PER_INSTANT == 0:
            now = (first + timedelta(milliseconds=i // EVENTS_PER_INSTANT)).isoformat()
        ctl = f"plc-{i % CONTROLLERS:04d}"
        body: dict[str, Any] = {
            "schema": "otwatch.change/1",
            "event_id": new_event_id(),
            "seq": i + 1,
            "agent_id": "edge-bench",
            "site": "plant-1",
            "line": "line-1",
            "controller": {"id": ctl, "protocol": "modbus", "endpoint": "127.0.0.1:502",
                           "validated": i % 3 == 0},
            "tag": {"name": f"sp_{i % 7}", "address": f"holding:{i % 7}", "kind": "setpoint",
                    "critical_to_quality": i % 2 == 0, "unit": "degC"},
            "old_value": float(i),
            "new_value": float(i + 1),
            "occurred_at": now,
            "detected_at": now,
            "change_kind": "setpoint_change",
            "verdict": "unapproved",
            "verdict_reason": f"no approved change record for {ctl}/sp_{i % 7}",
        }
        out.append((f"plant-1/{ctl}".encode(), orjson.dumps(body)))
    return out


async def prefill(settings: KafkaSettings, n: int) -> float:
    await ensure_topics(settings, [TOPIC])
    producer = AIOKafkaProducer(**settings.producer_kwargs())
    await producer.start()
    start = time.perf_counter()
    try:
        for i in range(0, n, 50_000):
            chunk = event_values(min(50_000, n - i))
            futures = [await producer.send(TOPIC, value, key=key) for key, value in chunk]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return n / (time.perf_counter() - start)


async def _sample(
    count: Any, total: int, duration: float, limit_s: float, gc_time: GcByGeneration | None = None,
) -> tuple[float, int, float]:
    """Wait for the first event, then measure ``duration`` s (or until ``total`` are done).

    Returns (elapsed s, events in that time, CPU s of this process in that time); ``gc_time``
    counts the garbage collector's CPU s in that time.
    """
    deadline = time.perf_counter() + limit_s
    while count() == 0:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"no event processed within {limit_s:.0f} s")
        await asyncio.sleep(0.01)
    with gc_time or contextlib.nullcontext():
        t0, c0, cpu0 = time.perf_counter(), count(), time.process_time()
        while time.perf_counter() - t0 < duration and count() < total:
            await asyncio.sleep(0.05)
    return time.perf_counter() - t0, count() - c0, time.process_time() - cpu0


async def measure_classifier(
    settings: KafkaSettings, target: str, n: int, duration: float, *,
    schema: str | None = None, group: str = "bench-classifier",
) -> tuple[float, list[str]]:
    """The classifier on ``target`` (a SQLite path or a PostgreSQL DSN with ``schema``)."""
    config = ClassifierConfig(
        classifier=ClassifierSection(
            group_id=group,
            records_db=target,
            criteria=ROOT / "config" / "criteria.yaml",
            # Unsigned v1 events, as before signatures: the figure stays comparable. Checking
            # each event's Ed25519 signature adds ~65 us per event (one core, measured apart).
            require_signed_events=False,
        ),
        kafka=settings,
    )
    criteria = load_criteria(config.classifier.criteria)
    with open_store(target, schema=schema) as store:
        store.migrate()
        classifier = Classifier(config, criteria, RetryingStore(target, store=store))
        task = asyncio.create_task(classifier.run(), name="bench-classifier")
        gc_time = GcByGeneration()
        try:
            elapsed, done, cpu = await _sample(
                lambda: classifier.processed, n, duration, 60, gc_time
            )
        finally:
            classifier.stop()
            await asyncio.wait({task}, timeout=15)
            if not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=5)
        records = len(store.list_records())
    rate = done / elapsed
    where = "SQLite" if schema is None else "PostgreSQL"
    notes = [
        f"classifier on {where}: {done:,} events in {elapsed:.1f} s ({rate:,.0f}/s); {cpu:.1f}"
        f" CPU-s ({done / cpu:,.0f} events per CPU-second, of which gc {gc_time.total_s:.2f}"
        f" CPU-s); {records:,} master records open",
    ]
    if classifier.processed >= n:
        notes.append(f"the topic ran dry ({n:,} events) before {duration:.0f} s")
    return rate, notes


async def measure_classifier_pg(
    settings: KafkaSettings, n: int, duration: float
) -> tuple[float, list[str]]:
    """The classifier on PostgreSQL, in a schema of its own that is dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex}"
    try:
        return await measure_classifier(
            settings, PG_DSN, n, duration, schema=schema, group="bench-classifier-pg"
        )
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


async def measure_bare(settings: KafkaSettings, n: int, duration: float) -> tuple[float, str]:
    consumer = AIOKafkaConsumer(
        TOPIC, group_id="bench-bare", enable_auto_commit=False, auto_offset_reset="earliest",
        **settings.consumer_kwargs(),
    )
    await consumer.start()
    seen = 0

    async def loop() -> None:
        nonlocal seen
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for tp, messages in batches.items():
                for msg in messages:
                    SuspectChange.model_validate_json(msg.value)
                seen += len(messages)
                await consumer.commit({tp: messages[-1].offset + 1})

    task = asyncio.create_task(loop(), name="bench-bare-consumer")
    try:
        elapsed, done, cpu = await _sample(lambda: seen, n, duration, 60)
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=5)
        await consumer.stop()
    return done / elapsed, f"bare: {done:,} events in {elapsed:.1f} s; {cpu:.1f} CPU-s"


async def _main(quick: bool) -> list[Result]:
    duration = 10.0 if quick else 60.0
    n = int(20_000 * duration)
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        settings = KafkaSettings(
            bootstrap_servers=broker.bootstrap, client_id="bench", enable_idempotence=False
        )
        fill_rate = await prefill(settings, n)
        rate, notes = await measure_classifier(
            settings, str(Path(tmp) / "records.db"), n, duration)
        pg_rate, pg_notes = await measure_classifier_pg(settings, n, duration)
        bare, bare_note = await measure_bare(settings, n, duration)
    notes = [f"{n:,} events pre-filled at {fill_rate:,.0f}/s", *notes, bare_note]
    what = "bare aiokafka consume + model_validate_json, events/s"
    return [
        Result("classifier_events_per_s", rate, baseline=bare, baseline_what=what, notes=notes),
        Result("classifier_vs_bare_ratio", rate / bare, baseline=bare, baseline_what=what),
        Result("classifier_pg_vs_bare_ratio", pg_rate / bare, baseline=bare, baseline_what=what,
               notes=pg_notes),
    ]


def run(quick: bool) -> list[Result]:
    return run_loop(_main(quick))  # type: ignore[no-any-return]


if __name__ == "__main__":
    child_main(KEYS, run)
