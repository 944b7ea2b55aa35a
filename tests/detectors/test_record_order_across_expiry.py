"""The classifier's record events and alerts keep per-key order across a batch that aiokafka
fails for its age (idempotence off, as with Tansu).

The `Recorder` publishes batch B while the broker is cut off, and half a request timeout later
batch C, for the same record and the same controller (one key on each topic). B fails once its
``request_timeout_ms`` has run out; the network comes back at once, while C is still young
enough to be delivered. B's offsets are never committed, so the next run publishes B and C again.
With the Recorder's publishes handed over one at a time per partition (`BatchChain`), C was never
handed to the producer and fails too (`KeptBack`): the first arrival of every event is in order
on both topics. Without it C's messages land before B's.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from agent.kafka.batching import KeptBack
from agent.kafka.settings import KafkaSettings, TopicNames
from agent.kafka.topics import ensure_topics
from detectors import health
from detectors.criteria import classify, load_criteria
from detectors.recorder import Item, Recorder, Stored
from detectors.records import RecordOutcome
from simulators.broker import EmbeddedBroker
from tests.delivery.kafka_read import first_occurrences, read_topics
from tests.delivery.proxy import TcpProxy
from tests.delivery.test_outage import proxied_broker  # noqa: F401 - the broker behind a proxy
from tests.support.events import make_event

pytestmark = pytest.mark.integration
CRITERIA = load_criteria(Path(__file__).parents[2] / "config" / "criteria.yaml")
TOPICS = TopicNames()
REQUEST_TIMEOUT_S = 2.0
FLIGHT = 10


def recorded(count: int) -> list[tuple[Item, RecordOutcome]]:
    """Events of one controller attached to one record, in the order they were recorded."""
    out = []
    for _ in range(count):
        event = make_event()
        outcome = RecordOutcome(event_id=event.event_id, record_id="NC-1", ticket_id=None,
                                created=False, duplicate=False)
        out.append(((event, classify(event, CRITERIA)), outcome))
    return out


def stored(part: list[tuple[Item, RecordOutcome]]) -> Stored:
    return Stored([item for item, _ in part], [outcome for _, outcome in part])


def recorder(producer: AIOKafkaProducer) -> Recorder:
    """A Recorder that only publishes (no duplicates: the records store is never asked)."""
    return Recorder(producer, TOPICS, CRITERIA, store=None,  # type: ignore[arg-type]
                    status=health.Status(path=None), clock=lambda: datetime.now(UTC))


def expiring(bootstrap: str) -> KafkaSettings:
    """Idempotence off (as with Tansu): a batch fails once its request timeout ran out."""
    return KafkaSettings(bootstrap_servers=bootstrap, enable_idempotence=False,
                         request_timeout_ms=int(REQUEST_TIMEOUT_S * 1000), retry_backoff_ms=100,
                         reconnect_backoff_max_s=0.2)


async def first_arrivals(bootstrap: str, topic: str, count: int) -> list[str]:
    """Each event's id at its first arrival on ``topic`` (an alert's id is its event's)."""
    received = await read_topics(bootstrap, [topic], until_count=count, limit_s=5)
    for r in received:
        r.value.setdefault("event_id", r.value.get("alert_id"))
    return [r.value["event_id"] for r in first_occurrences(received)]


async def test_a_publish_failed_for_its_age_is_not_overtaken_by_the_next_one(
    proxied_broker: tuple[EmbeddedBroker, TcpProxy],  # noqa: F811 - the fixture imported
) -> None:
    broker, proxy = proxied_broker
    settings = expiring(broker.bootstrap)
    await ensure_topics(settings, [TOPICS.records, TOPICS.alerts])
    events = recorded(2 * FLIGHT)
    producer = AIOKafkaProducer(**settings.producer_kwargs())
    await producer.start()
    try:
        for topic in (TOPICS.records, TOPICS.alerts):
            await producer.partitions_for(topic)  # metadata known before the cut
        first = recorder(producer)
        await proxy.cut()
        acked_b: Any = await first.publish(stored(events[:FLIGHT]))
        await asyncio.sleep(REQUEST_TIMEOUT_S / 2)
        acked_c: Any = await first.publish(stored(events[FLIGHT:]))
        await asyncio.wait({acked_b}, timeout=4 * REQUEST_TIMEOUT_S)
        await proxy.restore()  # C (if it was handed over) is young enough to be delivered
        assert acked_b.done() and acked_b.exception() is not None, "B did not fail"
        await asyncio.wait({acked_c}, timeout=2 * REQUEST_TIMEOUT_S)
        kept_back = acked_c.done() and isinstance(acked_c.exception(), KeptBack)
        await first.close()
        # The next run: from the committed offsets (before B), everything again, in order.
        again = recorder(producer)
        await (await again.publish(stored(events)))
        await again.close()
    finally:
        await producer.stop()
    position = {outcome.event_id: i for i, (_, outcome) in enumerate(events)}
    for topic in (TOPICS.records, TOPICS.alerts):
        ids = await first_arrivals(broker.bootstrap, topic, 2 * FLIGHT)
        seqs = [position.get(event_id, -1) for event_id in ids]
        assert seqs == list(range(2 * FLIGHT)), f"{topic}: first arrivals out of order: {seqs}"
    assert kept_back, "C was not failed as kept back behind B"
