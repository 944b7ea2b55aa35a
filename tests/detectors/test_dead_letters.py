"""The dead-letter path cannot itself fail (issue 14, item 1): a dead letter is small whatever
was refused, and one the broker will not take is counted, logged once and given up."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from detectors import health
from detectors.messages import DEAD_LETTER_HEAD_BYTES, DeadLetters, dead_letter
from simulators.broker import EmbeddedBroker
from tests.detectors.running import read_topic, settings

AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def record(value: bytes | None, key: bytes | None = b"plant-1/oven-01", offset: int = 7) -> Any:
    return ConsumerRecord(
        topic="otwatch.changes.suspect", partition=2, offset=offset, timestamp=0,
        timestamp_type=0, key=key, value=value, checksum=None,
        serialized_key_size=len(key or b""), serialized_value_size=len(value or b""),
        headers=(),
    )


def test_a_dead_letter_is_small_whatever_was_refused() -> None:
    value = "é".encode() * 5_000_000  # 10 MB of two-byte characters
    key = b"k" * 2_000_000
    body = dead_letter(reason="too large: " + "x" * 10_000, topic="t", partition=1, offset=9,
                       key=key, value=value, at=AT)
    assert len(orjson.dumps(body)) < 8 * 1024
    assert body["value_bytes"] == len(value)
    assert body["value_sha256"] == hashlib.sha256(value).hexdigest()
    assert body["value_truncated"] is True and body["key_bytes"] == len(key)
    head = body["value_head"]
    assert head == "é" * (DEAD_LETTER_HEAD_BYTES // 2)  # no character cut in two
    assert len(body["reason"]) == 1000 and len(body["key"]) == 1024


def test_a_tombstone_and_a_short_value_keep_what_they_are() -> None:
    tomb = dead_letter(reason="empty", topic="t", partition=0, offset=0, key=None, value=None,
                       at=AT)
    assert (tomb["value_bytes"], tomb["value_sha256"], tomb["value_head"]) == (None, None, None)
    short = dead_letter(reason="not JSON", topic="t", partition=0, offset=0, key=None,
                        value=b"\xffabc", at=AT)
    assert short["value_head"] == "\ufffdabc" and short["value_truncated"] is False


def dropped() -> float:
    return health.DEAD_DROPPED._value.get()  # type: ignore[attr-defined,no-any-return]


@pytest.mark.integration
async def test_a_dead_letter_the_broker_refuses_is_counted_logged_once_and_given_up(
    broker: EmbeddedBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A producer that refuses anything over 1 KiB: every dead letter here is larger.
    producer = AIOKafkaProducer(**settings(broker.bootstrap).producer_kwargs(),
                                max_request_size=1024)
    await producer.start()
    status = health.Status(tmp_path / "status.json")
    before = dropped()
    try:
        letters = DeadLetters(producer, "otwatch.dlq", status, lambda: AT)
        with caplog.at_level(logging.DEBUG, logger="detectors.messages"):
            await letters.send([(record(b"{" * 5000, offset=n), "not JSON") for n in range(3)])
    finally:
        await producer.stop()
    assert dropped() - before == 3
    assert (status.dead_letters, status.dead_letters_dropped) == (3, 3)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "being dropped" in errors[0].getMessage()
    assert "MessageSizeTooLargeError" in errors[0].getMessage()


@pytest.mark.integration
async def test_a_dead_letter_that_cannot_be_delivered_in_time_is_given_up(
    broker: EmbeddedBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A topic the broker never has (here: a name Kafka does not allow) fails for a reason that
    may pass; after the patience the dead letter is given up rather than hold reading back."""
    producer = AIOKafkaProducer(**{**settings(broker.bootstrap).producer_kwargs(),
                                   "request_timeout_ms": 1000})
    await producer.start()
    status = health.Status(None)
    try:
        letters = DeadLetters(producer, "no such topic!", status, lambda: AT, patience_s=2.0)
        with caplog.at_level(logging.ERROR, logger="detectors.messages"):
            await letters.send([(record(b"x"), "not JSON")])
    finally:
        await producer.stop()
    assert status.dead_letters_dropped == 1
    assert len([r for r in caplog.records if r.name == "detectors.messages"]) == 1


@pytest.mark.integration
async def test_dead_letters_reach_the_topic_with_their_bounded_body(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    producer = AIOKafkaProducer(**settings(broker.bootstrap).producer_kwargs())
    await producer.start()
    status = health.Status(None)
    try:
        letters = DeadLetters(producer, "otwatch.dlq", status, lambda: AT)
        await letters.send([(record(b"x" * 3_000_000, key=b"k" * 5000), "too large: 3000000")])
    finally:
        await producer.stop()
    (letter,) = await read_topic(broker.bootstrap, "otwatch.dlq", lambda m: len(m) >= 1)
    assert (letter["schema"], letter["offset"], letter["partition"]) == (
        "otwatch.dead-letter/2", 7, 2)
    assert letter["value_head"] == "x" * DEAD_LETTER_HEAD_BYTES
    assert status.dead_letters_dropped == 0
