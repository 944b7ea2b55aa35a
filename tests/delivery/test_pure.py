"""Pure pieces of the publisher and the heartbeat sender: which errors refuse one record for
good, which records are too large, heartbeat stamping.

(The backoff they share is `agent.runtime.backoff`, tested in tests/agent/runtime/.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer, errors
from hypothesis import given
from hypothesis import strategies as st

from agent.contract import Heartbeat
from agent.heartbeat import stamped
from agent.publisher import _too_large, refusal


@pytest.mark.parametrize(
    ("exc", "refused"),
    [
        (errors.MessageSizeTooLargeError("over max_request_size"), True),
        (errors.RecordListTooLargeError(), True),
        (errors.CorruptRecordException(), True),
        (errors.InvalidTimestampError(), True),
        (errors.UnsupportedForMessageFormatError(), True),
        (errors.UnknownError(), True),  # unnamed: quarantined only alone and not twice in a row
        # these refuse every record alike: retried as an outage, never quarantined
        (errors.TopicAuthorizationFailedError(), False),
        (errors.ClusterAuthorizationFailedError(), False),
        (errors.InvalidTopicError(), False),
        (errors.KafkaTimeoutError(), False),
        (errors.KafkaConnectionError(), False),
        (errors.NotLeaderForPartitionError(), False),
        (OSError(), False),
    ],
)
def test_only_errors_about_one_record_refuse_it(exc: BaseException, refused: bool) -> None:
    reason = refusal(exc)
    assert (reason is not None) is refused
    if reason is not None:
        assert reason.startswith(type(exc).__name__ + ": ")


def test_heartbeat_is_stamped_at_send_time_unless_set() -> None:
    beat = Heartbeat(
        agent_id="a", version="1", controllers_up=0, controllers_total=0, spool_depth=0, last_seq=0
    )
    now = datetime(2026, 11, 23, tzinfo=UTC)
    assert stamped(beat, now).sent_at == now
    earlier = beat.model_copy(update={"sent_at": datetime(2026, 1, 1, tzinfo=UTC)})
    assert stamped(earlier, now).sent_at == earlier.sent_at


async def _aiokafka_refusal(key: bytes, value: bytes, limit: int) -> str | None:
    """What ``producer.send`` says of the record before it sends anything (the check the
    publisher makes itself now that it appends records into batches)."""
    producer = AIOKafkaProducer(max_request_size=limit)
    try:
        producer._serialize(key, value, [])
    except errors.MessageSizeTooLargeError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@given(st.integers(0, 600), st.integers(0, 1200), st.integers(300, 1200))
def test_a_record_is_too_large_exactly_when_aiokafkas_send_says_so(
    key_size: int, value_size: int, limit: int
) -> None:
    key, value = b"k" * key_size, b"v" * value_size
    ours = _too_large(key, value, limit)
    expected = asyncio.run(_aiokafka_refusal(key, value, limit))
    assert (None if ours is None else f"{type(ours).__name__}: {ours}") == expected


def test_the_size_bound_is_aiokafkas_to_the_byte() -> None:
    limit = 1000
    for value_size in range(limit - 300, limit + 2):
        key, value = b"plant-1/press-01", b"v" * value_size
        ours = _too_large(key, value, limit)
        expected = asyncio.run(_aiokafka_refusal(key, value, limit))
        assert (None if ours is None else f"{type(ours).__name__}: {ours}") == expected
    assert _too_large(b"k", b"v" * 2000, limit) is not None
