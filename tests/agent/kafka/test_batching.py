"""`Outbox` against the real broker: each message where ``producer.send`` puts it, in order."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from agent.kafka.batching import Outbox, PartitionCache
from agent.kafka.settings import KafkaSettings
from agent.kafka.topics import ensure_topics
from simulators.broker import EmbeddedBroker

pytestmark = pytest.mark.integration

Message = tuple[int, bytes, bytes]  # partition, key, value


async def read_all(settings: KafkaSettings, topic: str, count: int) -> list[Message]:
    consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", **settings.consumer_kwargs())
    await consumer.start()
    seen: list[Message] = []
    try:
        for _ in range(100):
            batches = await consumer.getmany(timeout_ms=200)
            seen += [(m.partition, m.key, m.value) for msgs in batches.values() for m in msgs]
            if len(seen) >= count:
                break
    finally:
        await consumer.stop()
    return seen


async def test_outbox_places_and_orders_messages_as_send_does(broker: EmbeddedBroker) -> None:
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap, enable_idempotence=False,
                             topic_partitions=4)
    await ensure_topics(settings, ["batched", "sent"])
    messages = [(f"plc-{i % 13}".encode(), f"value-{i}".encode()) for i in range(600)]
    producer = AIOKafkaProducer(**settings.producer_kwargs())
    await producer.start()
    try:
        outbox = Outbox(producer, PartitionCache())
        for key, value in messages:
            outbox.add("batched", key, value)
        await (await outbox.send())
        for key, value in messages:
            await producer.send("sent", value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    batched = await read_all(settings, "batched", len(messages))
    sent = await read_all(settings, "sent", len(messages))
    assert len(batched) == len(sent) == len(messages)
    partition_of = {key: partition for partition, key, _ in sent}
    assert {key: partition for partition, key, _ in batched} == partition_of
    assert len(set(partition_of.values())) > 1
    for key in partition_of:  # one key's messages keep their order (one partition)
        assert [v for _, k, v in batched if k == key] == [v for k2, v in messages if k2 == key]
