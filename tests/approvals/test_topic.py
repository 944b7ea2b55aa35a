"""The approvals topic through the real embedded broker: read from the start, then live."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import REGISTRY

from agent.approvals import ApprovalBook, MatchPolicy
from agent.approvals.topic import ApprovalTopicSource
from simulators.broker import EmbeddedBroker
from tests.approvals.factory import record_yaml

TOPIC = "otwatch.approvals"


async def create_topic(bootstrap: str, partitions: int = 2) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topic = NewTopic(TOPIC, num_partitions=partitions, replication_factor=1)
        await admin.create_topics([topic])
    finally:
        await admin.close()


async def produce(bootstrap: str, records: list[tuple[str, Any, int]]) -> None:
    """(key, record dict or None for a tombstone, partition) each."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        for key, value, partition in records:
            payload = None if value is None else json.dumps(value).encode()
            await producer.send_and_wait(TOPIC, payload, key=key.encode(), partition=partition)
    finally:
        await producer.stop()


async def eventually(check: Callable[[], bool], within_s: float = 20.0) -> None:
    """Wait for a condition on the book (it has no change event to await)."""
    async with asyncio.timeout(within_s):
        while not check():
            await asyncio.sleep(0.05)


def ids(book: ApprovalBook) -> list[str]:
    return sorted(r.id for r in book.approvals())


@pytest.mark.integration
async def test_reads_the_table_then_follows_it(broker: EmbeddedBroker) -> None:
    await create_topic(broker.bootstrap)
    await produce(broker.bootstrap, [
        ("CR-1", record_yaml(id="CR-1"), 0),
        ("CR-2", record_yaml(id="CR-2"), 1),
        ("CR-3", record_yaml(id="CR-3"), 0),
        ("CR-2", None, 1),                                   # tombstone
        ("CR-3", record_yaml(id="CR-3", status="revoked"), 0),
        ("CR-4", {"id": "CR-4", "oops": True}, 1),           # refused, counted
    ])
    book = ApprovalBook([], policy=MatchPolicy())
    source = ApprovalTopicSource(book, bootstrap_servers=broker.bootstrap, retry_s=0.2)
    await source.start()
    try:
        assert await source.wait_loaded(within_s=30)
        assert ids(book) == ["CR-1", "CR-3"]
        assert [r.status for r in book.approvals()] == ["active", "revoked"]
        assert REGISTRY.get_sample_value("otwatch_agent_approvals_topic_up") == 1

        await produce(broker.bootstrap, [("CR-5", record_yaml(id="CR-5"), 1), ("CR-1", None, 0)])
        await eventually(lambda: ids(book) == ["CR-3", "CR-5"])
    finally:
        await source.stop()
    assert REGISTRY.get_sample_value("otwatch_agent_approvals_topic_up") == 0


@pytest.mark.integration
async def test_waits_for_the_topic_to_exist(broker: EmbeddedBroker) -> None:
    book = ApprovalBook([], policy=MatchPolicy())
    source = ApprovalTopicSource(book, bootstrap_servers=broker.bootstrap, retry_s=0.2)
    await source.start()
    try:
        assert not await source.wait_loaded(within_s=0.5)
        await create_topic(broker.bootstrap, partitions=1)
        assert await source.wait_loaded(within_s=30)
        await produce(broker.bootstrap, [("CR-1", record_yaml(id="CR-1"), 0)])
        await eventually(lambda: ids(book) == ["CR-1"])
    finally:
        await source.stop()


async def test_stop_without_a_broker_is_bounded() -> None:
    from simulators.broker import free_port

    book = ApprovalBook([], policy=MatchPolicy())
    source = ApprovalTopicSource(book, bootstrap_servers=f"127.0.0.1:{free_port()}", retry_s=0.1)
    await source.start()
    assert not await source.wait_loaded(within_s=0.5)
    await source.stop(grace_s=10)
    assert not source.loaded


def test_a_consumer_group_is_refused() -> None:
    book = ApprovalBook([], policy=MatchPolicy())
    with pytest.raises(ValueError, match="group_id"):
        ApprovalTopicSource(book, bootstrap_servers="127.0.0.1:9",
                            consumer_kwargs={"group_id": "g"})
