"""Pure pieces of the publisher and the heartbeat sender: which errors refuse one record for
good, where a key's records go, heartbeat stamping.

(The backoff they share is `agent.runtime.backoff`, tested in tests/agent/runtime/.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiokafka import errors
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from agent.contract import Heartbeat
from agent.heartbeat import stamped
from agent.publisher import KeyPartitioner, refusal


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


@given(st.lists(st.tuples(st.binary(max_size=40), st.integers(1, 64)), max_size=60))
def test_a_key_goes_where_aiokafkas_default_partitioner_puts_it(
    sends: list[tuple[bytes, int]],
) -> None:
    """Remembered per key and partition count, and forgotten past its bound: the same
    partition as the default's murmur2, so one controller's events stay in one, in order."""
    partitioner, default = KeyPartitioner(), DefaultPartitioner()
    partitioner.MAX_KEYS = 8
    for key, count in [*sends, *sends]:  # the second time from what it remembers
        partitions = list(range(100, 100 + count))
        assert partitioner(key, partitions, partitions[:1]) == default(key, partitions, [])


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    assert KeyPartitioner()(None, [0, 1, 2], [2]) == 2
