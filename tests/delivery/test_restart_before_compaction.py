"""An agent that stops (or dies) after the broker acknowledged rows but before it deleted them
(the spool moved its watermark; `Spool.compact` runs only when the drain is idle): the next
agent sends none of them again, sends every row above the watermark, and deletes the
acknowledged rows once its own drain is idle. Real broker, real spool file."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.kafka.settings import KafkaSettings, TopicNames
from agent.publisher import SpoolPublisher
from agent.spool import Spool
from simulators.broker import EmbeddedBroker
from tests.delivery.checks import assert_delivered
from tests.delivery.kafka_read import read_topics
from tests.delivery.test_spool_watermark import stored_rows
from tests.delivery.waiting import eventually, wait_until_empty
from tests.support.events import numbered_events

pytestmark = pytest.mark.integration


async def test_a_restart_between_acknowledgement_and_deletion_resends_nothing_acknowledged(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    topics = TopicNames()
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    spool = Spool(tmp_path / "spool.db", topics=topics)
    first = spool.append(numbered_events(300))
    pub = SpoolPublisher(spool, settings, batch_size=100)
    # The drain alone, as the publisher's task runs it, and then a stop: the idle deletion
    # that would follow in the task never runs (a stop or a crash right after the drain).
    pub._kwargs = settings.producer_kwargs()
    await pub._drain()
    await pub.stop()
    assert spool.depth() == 0 and stored_rows(spool.path) == 300  # acked, not yet deleted
    spool.close()

    spool = Spool(tmp_path / "spool.db", topics=topics)  # the next agent
    assert spool.depth() == 0 and spool.acknowledged_rows() == 300
    second = spool.append(numbered_events(50, start=300))
    pub = SpoolPublisher(spool, settings, batch_size=100)
    await pub.start()
    try:
        await wait_until_empty(spool)
        assert await eventually(lambda: stored_rows(spool.path) == 0, 10)
    finally:
        await pub.stop()
        spool.close()
    stored = first + second
    received = await read_topics(
        broker.bootstrap, [topics.suspect, topics.authorized], until_count=len(stored) + 1,
        limit_s=5.0,
    )
    assert_delivered(stored, received, topics)
    assert len(received) == len(stored)  # nothing acknowledged was sent a second time
