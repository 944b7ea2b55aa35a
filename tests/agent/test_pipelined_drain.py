"""The pipelined drain (one batch sent while the one before waits for the broker) removes
from the spool only what the broker acknowledged: cut the network in the middle of a drain,
and the spool keeps every row not acknowledged (its depth does not move while the broker is
unreachable); once the network is back, every event arrives, in seq order per controller."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.contract import SuspectChange
from agent.kafka.settings import KafkaSettings, TopicNames
from agent.publisher import SpoolPublisher
from agent.spool import Spool
from simulators.broker import EmbeddedBroker
from tests.delivery.checks import assert_delivered
from tests.delivery.kafka_read import read_topics
from tests.delivery.proxy import TcpProxy
from tests.delivery.test_outage import proxied_broker  # noqa: F401 - the broker behind a proxy
from tests.delivery.test_spool_watermark import stored_rows
from tests.delivery.waiting import eventually, wait_until_empty
from tests.support.events import numbered_events

pytestmark = pytest.mark.integration
EVENTS, BATCH = 20_000, 500


async def test_a_cut_in_the_middle_of_a_pipelined_drain_loses_and_drops_nothing(
    proxied_broker: tuple[EmbeddedBroker, TcpProxy],  # noqa: F811 - the fixture imported
    tmp_path: Path,
) -> None:
    broker, proxy = proxied_broker
    topics = TopicNames()
    spool = Spool(tmp_path / "spool.db", topics=topics)
    stored: list[SuspectChange] = []
    for start in range(0, EVENTS, 100):
        stored += spool.append(numbered_events(100, controllers=8, start=start))
    settings = KafkaSettings(
        bootstrap_servers=broker.bootstrap, enable_idempotence=False, request_timeout_ms=4000,
        retry_backoff_ms=100, reconnect_backoff_max_s=1.0,
    )
    pub = SpoolPublisher(spool, settings, batch_size=BATCH)
    await pub.start()
    try:
        assert await eventually(lambda: spool.depth() < EVENTS, 30), "nothing was drained"
        await proxy.cut()  # batches are in flight now
        await asyncio.sleep(1.0)  # acknowledgements that were on their way are applied
        held = spool.depth()
        await eventually(lambda: pub.connected is False, 10)
        await asyncio.sleep(3.0)
        assert spool.depth() == held, "rows left the spool while the broker was unreachable"
        assert 0 < held < EVENTS, "the cut came after the drain (or before it): no test"
        await proxy.restore()
        await wait_until_empty(spool, 60)
        # Acknowledged rows leave the queue by a watermark; once the drain is idle they are
        # deleted for good (Spool.compact), the rows sent twice at the cut among them.
        assert await eventually(lambda: stored_rows(spool.path) == 0, 10)
    finally:
        await pub.stop()
        spool.close()
    # Read everything on the topics: the batches in flight at the cut are sent again, so the
    # topics hold more records than events (counting to len(stored) would stop short).
    received = await read_topics(
        broker.bootstrap, [topics.suspect, topics.authorized], until_count=2 * len(stored),
        limit_s=15.0,
    )
    assert_delivered(stored, received, topics)
