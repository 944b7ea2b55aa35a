"""The integrity reader's start ("latest") makes no seq gap of its own (the chaos test's false
``seqgap:edge-01:6-7`` under load), and a real gap after the start is still a finding.

The real classifier process against a fresh Tansu broker; the agent's messages are produced
here, stamped as the agent's client stamps them. e2e: a broker and a process, stopped by PID.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from agent.contract import Heartbeat, SuspectChange
from simulators.broker import EmbeddedBroker
from tests.detectors.running import (
    classifier,
    create_topics,
    records,
    settings,
    signed,
    status,
    wait_until,
    write_config,
)
from tests.support.events import make_event

pytestmark = pytest.mark.e2e

SUSPECT = "otwatch.changes.suspect"
HEARTBEAT = "otwatch.agents.heartbeat"


async def produce_stamped(bootstrap: str, events: list[SuspectChange], stamp_ms: int) -> None:
    """Write signed events carrying ``stamp_ms``: when the agent handed them to its client."""
    producer = AIOKafkaProducer(**settings(bootstrap).producer_kwargs())
    await producer.start()
    try:
        for event in events:
            key, value = signed(event)
            await producer.send_and_wait(SUSPECT, value, key=key, timestamp_ms=stamp_ms)
    finally:
        await producer.stop()


async def produce_beat(bootstrap: str, last_seq: int) -> None:
    beat = Heartbeat(agent_id="edge-01", version="t", sent_at=datetime.now(UTC),
                     controllers_up=3, controllers_total=3, spool_depth=0, last_seq=last_seq)
    producer = AIOKafkaProducer(**settings(bootstrap).producer_kwargs())
    await producer.start()
    try:
        await producer.send_and_wait(HEARTBEAT, beat.to_json(), key=beat.kafka_key())
    finally:
        await producer.stop()


async def test_a_start_between_the_partitions_of_one_batch_is_no_gap_and_a_real_gap_is(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """The agent sends seq 5 (oven-01) and 6-7 (press-01) in one batch; the client retries
    5's partition, so 6-7 are written before the classifier starts and 5 after it. The start
    cut reads none of the batch (all stamped before the start), so 8 is the baseline and only
    the real gap (9, never sent) is a finding."""
    await create_topics(broker.bootstrap)
    config = write_config(tmp_path, broker.bootstrap, seq_gap_grace_s=0.5, check_interval_s=0.5,
                          silence_after_s=600)  # start_from: latest, the default
    batch_sent_ms = int(time.time() * 1000)
    five = make_event(seq=5, controller={"id": "oven-01"})
    six, seven = (make_event(seq=s, controller={"id": "press-01"}, line="line-2") for s in (6, 7))
    await produce_stamped(broker.bootstrap, [six, seven], batch_sent_ms)
    db = tmp_path / "records.db"

    def integrity_evidence() -> list[str]:
        if not db.exists():
            return []
        found = [r for r in records(db) if r.correlation_key == "integrity:edge-01"]
        return sorted(e.event_id for e in found[0].evidence) if found else []

    with classifier(config) as proc:
        await asyncio.to_thread(wait_until, lambda: status(config).get("watching") is True, 40,
                                "the integrity reader caught up", proc)
        await produce_stamped(broker.bootstrap, [five], batch_sent_ms)  # the retried one
        eight = make_event(seq=8, controller={"id": "press-01"}, line="line-2")
        await produce_stamped(broker.bootstrap, [eight], int(time.time() * 1000))
        await produce_beat(broker.bootstrap, last_seq=8)
        # Then seq 9 is lost for real: 10 arrives, and the agent's spool is empty.
        ten = make_event(seq=10, controller={"id": "oven-01"})
        await produce_stamped(broker.bootstrap, [ten], int(time.time() * 1000))
        await produce_beat(broker.bootstrap, last_seq=10)
        # Gaps are reported lowest first, one per check: a false 6-7 would be there by now.
        ids = await asyncio.to_thread(wait_until, integrity_evidence, 40,
                                      "the real seq gap recorded", proc)
    assert ids == ["seqgap:edge-01:9"]
