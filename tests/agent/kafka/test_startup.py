"""Client start-up against the real broker: retried quietly until it answers, or until stop."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka import AIOKafkaProducer

from agent.kafka.settings import KafkaSettings
from agent.kafka.startup import start_with_retry
from agent.runtime.backoff import Backoff
from simulators.broker import EmbeddedBroker, free_port

pytestmark = pytest.mark.integration


def settings(port: int) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}", enable_idempotence=False,
                         request_timeout_ms=2000)


async def test_a_client_starts_once_the_broker_comes_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agent.kafka.startup")
    port = free_port()
    kafka = settings(port)
    starting = asyncio.create_task(start_with_retry(
        lambda: AIOKafkaProducer(**kafka.producer_kwargs()), kafka, "producer",
        backoff=Backoff(first_s=0.1, cap_s=0.5),
    ))
    broker = EmbeddedBroker(port=port)
    try:
        await asyncio.sleep(1.0)  # several failed attempts while nothing listens
        assert not starting.done()
        await asyncio.to_thread(broker.start)
        producer = await asyncio.wait_for(starting, 60)
        assert producer is not None
        await producer.stop()
    finally:
        starting.cancel()
        await asyncio.to_thread(broker.stop)
    messages = [(r.levelname, r.getMessage()) for r in caplog.records
                if r.name == "agent.kafka.startup"]
    assert [level for level, _ in messages] == ["ERROR", "INFO"], messages
    assert messages[0][1].startswith(f"Kafka producer (127.0.0.1:{port}) cannot start: ")
    assert messages[1][1] == f"Kafka producer (127.0.0.1:{port}) started"


async def test_stop_ends_the_retries_without_a_client() -> None:
    kafka = settings(free_port())  # nothing listens there
    stop = asyncio.Event()
    starting = asyncio.create_task(start_with_retry(
        lambda: AIOKafkaProducer(**kafka.producer_kwargs()), kafka, "producer", stop,
        backoff=Backoff(first_s=60.0, cap_s=60.0),  # the stop must cut the wait short
    ))
    await asyncio.sleep(0.5)
    stop.set()
    assert await asyncio.wait_for(starting, 30) is None
