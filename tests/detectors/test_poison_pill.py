"""A message too large to take does not jam the classifier (issue 14, item 1).

The embedded Tansu broker accepts messages far beyond Kafka's usual 1 MiB (120 MB measured with
a producer whose ``max_request_size`` allows it) and returns them whole whatever the consumer's
fetch sizes: the classifier's own limit (``classifier.max_message_bytes``) is what protects it.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from simulators.broker import EmbeddedBroker
from tests.detectors.running import (
    classifier,
    create_topics,
    read_topic,
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


async def produce_large(bootstrap: str, messages: list[tuple[bytes, bytes]]) -> None:
    """Send with a producer that allows messages up to 8 MiB (aiokafka's default is 1 MiB)."""
    producer = AIOKafkaProducer(**settings(bootstrap).producer_kwargs(),
                                max_request_size=8 * 2**20)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(SUSPECT, value, key=key)
    finally:
        await producer.stop()


async def test_an_oversized_message_is_dead_lettered_once_and_the_next_event_is_recorded(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    await create_topics(broker.bootstrap)
    config = write_config(tmp_path, broker.bootstrap)
    # Garbage over 1 MiB (its dead letter used to copy it whole, and the broker refused that),
    # and a well-formed event that is only too large (the size limit decides, not the parser).
    garbage = b"{" + b"x" * 1_500_000
    huge = make_event(new_value="x" * 1_500_000)
    valid, later = make_event(), make_event(tag={"name": "speed_sp"})
    key = valid.kafka_key()  # one partition: the valid event comes after the large one
    assert huge.kafka_key() == key
    await produce_large(broker.bootstrap, [
        (key, garbage), (key, huge.to_json()), signed(valid)])
    db = tmp_path / "records.db"
    with classifier(config, "first") as first:
        (record,) = await asyncio.to_thread(
            wait_until, lambda: records(db), 60, "the valid event's record", first)
        assert status(config, "first")["dead_letters"] == 2
    assert first.returncode == 0
    # A second process takes over: it starts from the committed offsets, past the dead letter.
    await produce_large(broker.bootstrap, [signed(later)])
    with classifier(config, "second") as second:
        await asyncio.to_thread(
            wait_until, lambda: len(records(db)) == 2 or len(
                {e.event_id for r in records(db) for e in r.evidence}) == 2,
            60, "the later event recorded", second)
        assert status(config, "second").get("dead_letters", 0) == 0
    dead = await read_topic(broker.bootstrap, "otwatch.dlq", lambda m: len(m) >= 3, limit_s=5)
    assert len(dead) == 2, [d["reason"] for d in dead]  # once each, not again on the restart
    for letter, value in zip(dead, (garbage, huge.to_json()), strict=True):
        assert letter["reason"].startswith("too large: ")
        assert (letter["topic"], letter["key"]) == (SUSPECT, key.decode())
        assert letter["value_bytes"] == len(value)
        assert letter["value_sha256"] == hashlib.sha256(value).hexdigest()
        head = letter["value_head"]
        assert value.decode().startswith(head) and 0 < len(head.encode()) <= 4096
        assert "value" not in letter
    assert record.controller == valid.controller.id
