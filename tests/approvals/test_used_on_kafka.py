"""Single-use approvals cannot be replayed after the agent's state directory is lost, and
unsigned approvals on the topic authorise nothing (issue 14, item 7), through the real broker.

The whole agent runs in process against the real simulated plant: it uses a single-use
approval, publishes that use to ``otwatch.approvals.used`` ahead of the authorized event, loses
its state directory (a replaced disk), starts again, reads the use back, and reports the same
change made again with the same approval as unapproved, saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from aiokafka import AIOKafkaProducer

from agent.approvals.signing import generate_keypair, sign_approval
from agent.config import AgentConfig, ModbusControllerConfig, load_agent_config
from agent.contract import EventSigner, SuspectChange
from agent.kafka.settings import KafkaSettings, TopicNames
from agent.publisher import SpoolPublisher
from agent.runner import Agent
from agent.spool import Spool
from simulators.broker import EmbeddedBroker
from simulators.runtime import SimulatedPlant
from tests.approvals.factory import record
from tests.delivery.kafka_read import Received, read_topics
from tests.support.events import numbered_events
from tests.support.plant import sample_plant

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

CONFIG = Path(__file__).parents[2] / "config"
TOPICS = TopicNames()
SIGNER_PRIVATE, SIGNER_PUBLIC = generate_keypair()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plant() -> AsyncIterator[SimulatedPlant]:
    async with sample_plant() as running:
        yield running


def approval(**changes: Any) -> dict[str, Any]:
    """CR-1 for press-01/temperature_sp = 185.0, valid an hour either side of now."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    base: dict[str, Any] = {
        "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_until": (now + timedelta(hours=1)).isoformat(),
        "approved_at": (now - timedelta(hours=1)).isoformat(),
    }
    return record(**(base | changes)).model_dump(mode="json", exclude_none=True)


def agent_config(plant: SimulatedPlant, work: Path, broker: EmbeddedBroker,
                 approvals: Path | None, **section: Any) -> AgentConfig:
    """config/agent.yaml on the plant's Modbus presses, this broker, this state directory;
    the event-signing key outside the state directory, where a site keeps it."""
    key = work / "event.key"
    if not key.exists():
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(EventSigner.generate().private_b64 + "\n")
    config = load_agent_config(CONFIG / "agent.yaml")
    controllers = [
        ctl.model_copy(update={"port": plant.port(ctl.id), "poll_interval_s": 0.1})
        for ctl in config.controllers
        if isinstance(ctl, ModbusControllerConfig) and ctl.id in ("press-01", "press-02")
    ]
    return config.model_copy(update={
        "controllers": controllers,
        "agent": config.agent.model_copy(update={"state_dir": work / "state"}),
        "kafka": config.kafka.model_copy(update={
            "bootstrap_servers": broker.bootstrap, "enable_idempotence": False,
            "topic_partitions": 2}),
        "metrics": config.metrics.model_copy(update={"port": 0}),
        "events": config.events.model_copy(update={"signing_key_file": key}),
        "approvals": config.approvals.model_copy(update={
            "files": [approvals] if approvals else [], **section}),
    })


@contextlib.asynccontextmanager
async def running(config: AgentConfig) -> AsyncIterator[Agent]:
    agent = Agent(config)
    task = asyncio.create_task(agent.run())
    try:
        await until(lambda: (config.agent.state_dir / "ready").exists(), "the agent ready")
        yield agent
    finally:
        agent.stop()
        await asyncio.wait_for(task, 20)


async def until(predicate: Any, what: str, timeout: float = 45.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {timeout} s: {what}") from None


async def published(broker: EmbeddedBroker, topics: list[str], count: int) -> list[Received]:
    got = await read_topics(broker.bootstrap, topics, until_count=count, limit_s=30)
    assert len(got) >= count, got
    return got


def events_of(received: list[Received]) -> list[SuspectChange]:
    return [SuspectChange.model_validate(r.value) for r in received
            if r.topic in (TOPICS.suspect, TOPICS.authorized)]


async def test_a_single_use_approval_is_not_authorised_twice_after_the_state_is_lost(
    plant: SimulatedPlant, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    await plant.reset()
    approvals = tmp_path / "approvals.yaml"
    approvals.write_text(yaml.safe_dump({"approvals": [approval(single_use=True)]}))
    config = agent_config(plant, tmp_path, broker, approvals)
    async with running(config) as agent:
        await until(lambda: agent.approvals.uses_known, "the uses read back (none yet)")
        await plant.write("press-01", "temperature_sp", 185.0, actor="j.doe")
        await until(lambda: agent.spool.last_seq() >= 1 and agent.spool.depth() == 0,
                    "the change delivered")
    got = await published(broker, [TOPICS.approvals_used, TOPICS.authorized], 2)
    (use,) = [r.value for r in got if r.topic == TOPICS.approvals_used]
    assert (use["approval_id"], use["agent_id"], use["controller"], use["tag"]) == (
        "CR-1", "edge-01", "press-01", "temperature_sp")
    (first,) = events_of(got)
    assert first.verdict.value == "authorized" and first.approval is not None
    assert first.approval.id == "CR-1"

    shutil.rmtree(config.agent.state_dir)  # the disk is replaced: spool, baseline, used set
    await plant.write("press-01", "temperature_sp", 180.0, actor="j.doe")
    async with running(config) as agent:
        await until(lambda: agent.approvals.uses_known, "the uses read back")
        assert "CR-1" in agent.approvals.used()
        await plant.write("press-01", "temperature_sp", 185.0, actor="j.doe")
        await until(lambda: agent.spool.last_seq() >= 1 and agent.spool.depth() == 0,
                    "the replay delivered")
    got = await published(broker, [TOPICS.suspect], 1)
    (replay,) = events_of(got)
    assert (replay.controller.id, replay.tag.name, replay.new_value) == (
        "press-01", "temperature_sp", 185.0)
    assert replay.verdict.value == "unapproved"
    assert replay.verdict_reason.startswith(
        "approval CR-1 is single-use and was already used (by the change at ")


async def produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def test_an_unsigned_approval_on_the_topic_authorises_nothing_and_a_signed_one_does(
    plant: SimulatedPlant, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    await plant.reset()
    unsigned = approval(id="CR-U", controller="press-02", expected={"exact": 190.0})
    signed = sign_approval(record(**approval(id="CR-S", expected={"exact": 186.0})),
                           SIGNER_PRIVATE)
    await produce(broker.bootstrap, TOPICS.approvals, b"CR-U", json.dumps(unsigned).encode())
    await produce(broker.bootstrap, TOPICS.approvals, b"CR-S",
                  signed.model_dump_json(exclude_none=True).encode())
    config = agent_config(plant, tmp_path, broker, None, from_topic=True,
                          trusted_keys=[SIGNER_PUBLIC])
    async with running(config) as agent:
        await until(lambda: {r.id for r in agent.approvals.approvals()} == {"CR-U", "CR-S"},
                    "the topic read")
        await plant.write("press-02", "temperature_sp", 190.0, actor="mallory")
        await plant.write("press-01", "temperature_sp", 186.0, actor="j.doe")
        await until(lambda: agent.spool.last_seq() >= 2 and agent.spool.depth() == 0,
                    "both changes delivered")
    got = await published(broker, [TOPICS.suspect, TOPICS.authorized], 2)
    verdicts = {(e.controller.id, e.verdict.value, e.verdict_reason) for e in events_of(got)}
    assert verdicts == {
        ("press-02", "approval_invalid",
         "approval CR-U arrived on the approvals topic unsigned, and approvals from the topic "
         "must be signed (approvals.topic_require_signed)"),
        ("press-01", "authorized", "matches approval CR-S by j.doe"),
    }


async def test_the_use_is_acknowledged_before_anything_behind_it_is_sent(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """The spool holds the use ahead of its event; the publisher ends a batch at the use, so
    the event goes out only once the broker has the use (both arrive, the use first)."""
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    use_row = (TOPICS.approvals_used, b"CR-7", b'{"approval_id":"CR-7"}')
    events = numbered_events(3, start=1)  # all three unapproved (every 7th from 0 is authorized)
    spool.append(events[:1])
    spool.append(events[1:], ahead=[use_row])
    suspect = TOPICS.suspect  # numbered_events: unapproved
    assert [row[1] for row in spool.peek(10)] == [
        suspect, TOPICS.approvals_used, suspect, suspect]
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    publisher = SpoolPublisher(spool, settings, barrier_topics=frozenset({TOPICS.approvals_used}))
    assert [r[1] for r in publisher._up_to_barrier(spool.peek(10))] == [
        suspect, TOPICS.approvals_used]
    await publisher.start()
    try:
        await until(lambda: spool.depth() == 0, "the spool drained")
    finally:
        await publisher.stop()
        spool.close()
    got = await published(broker, [TOPICS.approvals_used, TOPICS.suspect, TOPICS.authorized], 4)
    assert sorted(r.topic for r in got).count(TOPICS.approvals_used) == 1
