"""Pure pieces of the publisher and the heartbeat sender: which errors refuse one record for
good, heartbeat stamping.

(The backoff they share is `agent.runtime.backoff`, tested in tests/agent/runtime/.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiokafka import errors

from agent.contract import Heartbeat
from agent.heartbeat import stamped
from agent.publisher import refusal


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
