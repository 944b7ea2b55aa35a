"""Heartbeats reach the heartbeat topic, keyed by agent id; a dead broker never blocks stop()."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.contract import Heartbeat
from agent.heartbeat import HeartbeatSender
from agent.kafka.settings import KafkaSettings, TopicNames
from agent.publisher import SpoolPublisher
from agent.spool import Spool
from simulators.broker import EmbeddedBroker, free_port
from tests.delivery.kafka_read import read_topics
from tests.delivery.waiting import eventually
from tests.support.events import numbered_events

pytestmark = pytest.mark.integration


def beat() -> Heartbeat:
    return Heartbeat(
        agent_id="agent-7",
        version="0.1.0",
        controllers_up=2,
        controllers_total=3,
        spool_depth=4,
        last_seq=41,
    )


async def test_heartbeats_arrive_keyed_by_agent(broker: EmbeddedBroker) -> None:
    topic = TopicNames().heartbeat
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    sender = HeartbeatSender(settings, topic, beat, interval_s=0.2)
    await sender.start()
    try:
        assert await eventually(lambda: sender.sent >= 3, 20)
    finally:
        await sender.stop()
    received = await read_topics(broker.bootstrap, [topic], until_count=3)
    assert len(received) >= 3
    first = received[0]
    assert first.key == b"agent-7"
    parsed = Heartbeat.model_validate(first.value)
    assert parsed.schema_ == "otwatch.heartbeat/2"
    assert (parsed.controllers_up, parsed.spool_depth, parsed.last_seq) == (2, 4, 41)
    assert parsed.sent_at is not None and parsed.sent_at.tzinfo is not None
    assert parsed.sent_at <= datetime.now(UTC)


async def test_no_broker_start_does_not_raise_and_stop_is_bounded(tmp_path: Path) -> None:
    settings = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{free_port()}",
        enable_idempotence=False,
        request_timeout_ms=2000,
    )
    spool = Spool(tmp_path / "spool.db", topics=TopicNames())
    spool.append(numbered_events(3))
    pub = SpoolPublisher(spool, settings)
    sender = HeartbeatSender(settings, TopicNames().heartbeat, beat, interval_s=0.2)
    await pub.start()
    await sender.start()
    try:
        assert await eventually(lambda: pub.last_error is not None, 10)
        assert not pub.connected
    finally:
        await sender.stop(timeout=2)
        await pub.stop(timeout=2)
        spool.close()
    assert sender.sent == 0
    spool = Spool(tmp_path / "spool.db", topics=TopicNames())
    assert spool.depth() == 3  # left for the next start
    spool.close()
