"""An event the records database refuses holds back no other (issue 14: no input jams the
pipeline). The parser keeps out what is known to be refused (`detectors.messages`); should the
database still refuse a batch, each event is recorded alone and the refused one goes to the
dead-letter topic with why. Real parts: PostgreSQL (a schema of the test's own), the broker,
the `Recorder` as the classifier builds it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from agent.kafka.settings import TopicNames
from detectors import health
from detectors.correlate import NO_CONTEXT
from detectors.criteria import load_criteria
from detectors.messages import DeadLetters
from detectors.recorder import Placed, Recorder
from detectors.records import open_store
from detectors.store_retry import RetryingStore
from simulators.broker import EmbeddedBroker
from tests.detectors.running import create_topics, read_topic, settings, signed
from tests.support.events import make_event

pytestmark = [pytest.mark.e2e, pytest.mark.pg]
CRITERIA = load_criteria(Path(__file__).parents[2] / "config" / "criteria.yaml")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
async def pg_store(pg_dsn: str) -> AsyncIterator[RetryingStore]:
    schema = f"t_{uuid.uuid4().hex}"
    store = open_store(pg_dsn, schema=schema)
    store.migrate()
    yield RetryingStore(pg_dsn, store=store)
    store.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


async def test_an_event_the_database_refuses_is_dead_lettered_and_the_rest_recorded(
    broker: EmbeddedBroker, pg_store: RetryingStore
) -> None:
    await create_topics(broker.bootstrap)
    producer = AIOKafkaProducer(**settings(broker.bootstrap).producer_kwargs())
    await producer.start()
    status = health.Status(None)
    try:
        letters = DeadLetters(producer, "otwatch.dlq", status, lambda: NOW)
        recorder = Recorder(producer, TopicNames(), CRITERIA, pg_store, status, lambda: NOW,
                            dead_letters=letters)
        # PostgreSQL text cannot hold a NUL: this one is refused (the parser would keep it
        # out; here it is handed to the recorder directly, as a value the parser missed).
        good, bad, later = (make_event(controller={"id": "oven-01"}),
                            make_event(controller={"id": "oven-02"}, site="plant\x00"),
                            make_event(controller={"id": "oven-03"}))
        tp = TopicPartition("otwatch.changes.suspect", 3)
        placed: list[Placed] = [(e, NO_CONTEXT, (tp, n, signed(e)[1]))
                                for n, e in enumerate((good, bad, later), start=10)]
        await (await recorder.record(placed, NOW))
    finally:
        await producer.stop()
    recorded = await pg_store.call(
        lambda s: sorted(e.event_id for r in s.list_records() for e in r.evidence))
    assert recorded == sorted([good.event_id, later.event_id])
    (letter,) = await read_topic(broker.bootstrap, "otwatch.dlq", lambda m: len(m) >= 1)
    assert (letter["partition"], letter["offset"]) == (3, 11)
    assert letter["reason"].startswith("records database refused it: ")
    assert "NUL" in letter["reason"]
    assert status.processed == 2 and status.dead_letters == 1
