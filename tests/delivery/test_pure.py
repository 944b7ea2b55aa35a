"""Pure pieces of the publisher and the heartbeat sender: acknowledged prefix, heartbeat stamping.

(The backoff they share is `agent.runtime.backoff`, tested in tests/agent/runtime/.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.contract import Heartbeat
from agent.heartbeat import stamped
from agent.publisher import acknowledged_prefix


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([], 0),
        ([1, 2, 3], 3),
        ([1, TimeoutError(), 3], 1),  # 3 succeeded after a failure: resent, never acked early
        ([OSError(), 2], 0),
    ],
)
def test_only_the_acknowledged_prefix_is_removed(results: list[object], expected: int) -> None:
    assert acknowledged_prefix(results) == expected


def test_heartbeat_is_stamped_at_send_time_unless_set() -> None:
    beat = Heartbeat(
        agent_id="a", version="1", controllers_up=0, controllers_total=0, spool_depth=0, last_seq=0
    )
    now = datetime(2026, 11, 23, tzinfo=UTC)
    assert stamped(beat, now).sent_at == now
    earlier = beat.model_copy(update={"sent_at": datetime(2026, 1, 1, tzinfo=UTC)})
    assert stamped(earlier, now).sent_at == earlier.sent_at
