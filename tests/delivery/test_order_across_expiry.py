"""Per-key order across a record batch that aiokafka fails for its age (idempotence off).

Flight B is handed over while the broker is cut off; half a request timeout later flight C, for
the same key. B fails once its ``request_timeout_ms`` has run out; the network comes back at
once, while C is still young enough to be delivered. The publisher then sends everything again
from B's first row. With each partition's batches handed over one at a time (`BatchChain`), C
was never handed to the producer, so the first arrival of every event is in seq order; without
it C lands before B's rows (seen in the pipelined-drain test under load).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from agent.kafka.batching import BatchChain, KeptBack, Outbox, PartitionCache
from agent.kafka.settings import KafkaSettings
from agent.kafka.topics import ensure_topics
from simulators.broker import EmbeddedBroker
from tests.delivery.kafka_read import first_occurrences, read_topics
from tests.delivery.proxy import TcpProxy
from tests.delivery.test_outage import proxied_broker  # noqa: F401 - the broker behind a proxy

pytestmark = pytest.mark.integration
TOPIC, KEY = "otwatch.changes.authorized", b"plant-1/press-04"
REQUEST_TIMEOUT_S = 2.0
FLIGHT = 10


async def send_flight(
    producer: AIOKafkaProducer, partitions: PartitionCache, chain: BatchChain, seqs: range
) -> list[asyncio.Future[Any]]:
    """Hand one flight's events for KEY over, as the publisher does (no wait for the broker)."""
    outbox = Outbox(producer, partitions, chain)
    for seq in seqs:
        outbox.add(TOPIC, KEY, json.dumps({"event_id": f"e{seq}", "seq": seq}).encode())
    handed, error = await outbox.send_each()
    assert error is None
    return list(dict.fromkeys(d for d in handed if d is not None))


async def test_a_batch_failed_for_its_age_is_not_overtaken_by_the_one_behind_it(
    proxied_broker: tuple[EmbeddedBroker, TcpProxy],  # noqa: F811 - the fixture imported
) -> None:
    broker, proxy = proxied_broker
    settings = KafkaSettings(
        bootstrap_servers=broker.bootstrap, enable_idempotence=False,
        request_timeout_ms=int(REQUEST_TIMEOUT_S * 1000), retry_backoff_ms=100,
        reconnect_backoff_max_s=0.2,
    )
    await ensure_topics(settings, [TOPIC])
    producer = AIOKafkaProducer(**settings.producer_kwargs())
    await producer.start()
    partitions = PartitionCache()
    try:
        await producer.partitions_for(TOPIC)  # metadata known before the cut
        chain = BatchChain(producer)
        await proxy.cut()
        flight_b = await send_flight(producer, partitions, chain, range(0, FLIGHT))
        await asyncio.sleep(REQUEST_TIMEOUT_S / 2)
        flight_c = await send_flight(producer, partitions, chain, range(FLIGHT, 2 * FLIGHT))
        await asyncio.wait(flight_b, timeout=4 * REQUEST_TIMEOUT_S)
        await proxy.restore()  # C (if it was handed over) is young enough to be delivered
        assert all(f.done() and f.exception() is not None for f in flight_b), "B did not fail"
        await asyncio.wait(flight_c, timeout=2 * REQUEST_TIMEOUT_S)
        assert all(isinstance(f.exception(), KeptBack) for f in flight_c if f.done())
        await chain.close()
        # The next drain: every row from the oldest one not acknowledged (B's first), in order.
        resend = await send_flight(producer, partitions, BatchChain(producer), range(2 * FLIGHT))
        await asyncio.gather(*resend)
    finally:
        await producer.stop()
    received = await read_topics(broker.bootstrap, [TOPIC], until_count=2 * FLIGHT, limit_s=5)
    seqs = [r.value["seq"] for r in first_occurrences(received) if r.key == KEY]
    assert seqs == list(range(2 * FLIGHT)), f"first arrivals out of order or missing: {seqs}"
