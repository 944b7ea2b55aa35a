"""Pure pieces of the publisher: backoff, acknowledged prefix, heartbeat stamping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.heartbeat import Heartbeat, stamped
from agent.publisher import acknowledged_prefix, backoff_s


@pytest.mark.parametrize(
    ("attempt", "expected"), [(0, 0.2), (1, 0.4), (3, 1.6), (10, 30.0), (10_000, 30.0)]
)
def test_backoff_is_exponential_and_capped(attempt: int, expected: float) -> None:
    assert backoff_s(attempt, 0.2, 30.0) == pytest.approx(expected)


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
