"""The one backoff: capped exponential, reset after a success. Pure."""

from __future__ import annotations

import pytest

from agent.runtime.backoff import Backoff, backoff_s


@pytest.mark.parametrize(
    ("attempt", "expected"), [(0, 0.2), (1, 0.4), (3, 1.6), (10, 30.0), (10_000, 30.0)]
)
def test_backoff_is_exponential_and_capped(attempt: int, expected: float) -> None:
    assert backoff_s(attempt, 0.2, 30.0) == pytest.approx(expected)


def test_a_run_of_failures_doubles_up_to_the_cap_and_a_success_starts_over() -> None:
    backoff = Backoff(first_s=0.5, cap_s=10.0)
    assert [backoff.next() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    backoff.reset()
    assert backoff.next() == 0.5
