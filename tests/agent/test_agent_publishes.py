"""The whole agent, in process, against the simulated plant and the real broker: every event it
publishes is signed with its own key, and a record the broker refuses for good (an oversized
row an older agent left in the spool) neither holds back later events nor leaves the heartbeat
saying all is well (issue 14 item 2)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.config import AgentConfig
from agent.contract import HEARTBEAT_SCHEMA, Heartbeat, SignatureStatus, verify_event
from agent.keys import key_path, load_signer
from agent.spool import Spool
from simulators.broker import EmbeddedBroker
from simulators.runtime import SimulatedPlant
from tests.agent.test_agent_detects import config_for, running
from tests.delivery.head_of_line import oversized_event, write_raw_row
from tests.delivery.kafka_read import read_topics

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


def on_broker(config: AgentConfig, broker: EmbeddedBroker) -> AgentConfig:
    kafka = config.kafka.model_copy(
        update={"bootstrap_servers": broker.bootstrap, "create_topics": True}
    )
    beat = config.heartbeat.model_copy(update={"interval_s": 0.5})
    return config.model_copy(update={"kafka": kafka, "heartbeat": beat})


async def test_events_are_signed_and_a_refused_head_does_not_block_them(
    plant: SimulatedPlant, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    config = on_broker(config_for(plant, tmp_path), broker)
    spool_path = tmp_path / "spool.db"
    Spool(spool_path, topics=config.topics).close()
    write_raw_row(spool_path, oversized_event())  # left by an agent without size limits
    async with running(config) as agent:
        await plant.write("oven-01", "temperature_sp", 231.0, actor="unknown")
        received = await read_topics(broker.bootstrap, [config.topics.suspect], until_count=1)
        beats = await _heartbeats_until(broker, config, lambda b: b.health == "degraded")
        assert agent.spool.quarantined() == 1
    (event,) = [r for r in received if r.value["tag"]["name"] == "temperature_sp"]
    signer, made = load_signer(config)
    assert not made and key_path(config) == tmp_path / "event-signing.key"
    assert (key_path(config).stat().st_mode & 0o777) == 0o600
    raw = await _raw_value(broker, config.topics.suspect, event.offset, event.partition)
    check = verify_event(raw, {signer.key_id: signer.public_key_b64})
    assert check.status is SignatureStatus.VALID, check.reason
    beat = beats[-1]
    assert beat.schema_ == HEARTBEAT_SCHEMA and beat.spool_quarantined == 1
    assert "quarantine" in beat.problems[0]


async def _heartbeats_until(
    broker: EmbeddedBroker, config: AgentConfig, done: object
) -> list[Heartbeat]:
    for _ in range(60):
        got = await read_topics(broker.bootstrap, [config.topics.heartbeat], until_count=10**6,
                                limit_s=0.5)
        beats = [Heartbeat.model_validate(r.value) for r in got]
        if beats and done(beats[-1]):  # type: ignore[operator]
            return beats
        await asyncio.sleep(0.2)
    raise AssertionError("no degraded heartbeat")


async def _raw_value(broker: EmbeddedBroker, topic: str, offset: int, partition: int) -> bytes:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        record = await asyncio.wait_for(consumer.getone(), 10)
        assert record.value is not None
        return record.value
    finally:
        await consumer.stop()
