"""Happy path: events appended to the spool arrive on the right topics, keyed, in order per key."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.kafka.settings import KafkaSettings, TopicNames
from agent.publisher import SpoolPublisher
from agent.spool import Spool
from simulators.broker import EmbeddedBroker
from tests.delivery.checks import assert_delivered
from tests.delivery.kafka_read import read_topics
from tests.delivery.waiting import wait_until_empty
from tests.support.events import numbered_events

pytestmark = pytest.mark.integration


async def test_appended_events_arrive_keyed_and_in_order(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    topics = TopicNames()
    spool = Spool(tmp_path / "spool.db", topics=topics)
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    pub = SpoolPublisher(spool, settings, batch_size=100)
    await pub.start()
    try:
        stored = []
        for chunk in range(5):
            stored += spool.append(numbered_events(60, start=chunk * 60))
            pub.wake()
        await wait_until_empty(spool)
        assert pub.connected
    finally:
        await pub.stop()
        spool.close()
    assert [ev.seq for ev in stored] == list(range(1, 301))
    received = await read_topics(
        broker.bootstrap, [topics.suspect, topics.authorized], until_count=len(stored)
    )
    assert_delivered(stored, received, topics)
    assert len(received) == len(stored)  # no outage: no resend
