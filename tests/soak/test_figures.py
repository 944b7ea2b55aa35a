"""The soak run's judgement of its figures (the run itself is `make soak`, not `make test`)."""

from __future__ import annotations

import pytest

from tests.soak.figures import Series, judge, table, thirds


def test_thirds_take_at_least_one_sample_each() -> None:
    assert thirds([1.0]) == ([1.0], [1.0])
    assert thirds([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]) == ([1.0, 2.0], [6.0, 7.0])


@pytest.mark.parametrize("figure,samples,bounded", [
    # A start-up ramp in the first third sets the bar; a flat run stays under it.
    ("rss_mib", [40.0, 90.0, 100.0, 100.0, 101.0, 100.0, 102.0, 101.0, 101.0], True),
    # A leak: the last third outgrows the first by more than 15 % + 16 MiB.
    ("rss_mib", [100.0, 100.0, 100.0, 120.0, 130.0, 140.0, 150.0, 160.0, 170.0], False),
    ("open_fds", [30.0, 31.0, 30.0, 33.0, 36.0, 38.0], True),
    ("open_fds", [30.0, 31.0, 30.0, 35.0, 40.0, 45.0], False),
    ("asyncio_tasks", [20.0, 21.0, 20.0, 22.0, 24.0, 26.0], True),
    ("asyncio_tasks", [20.0, 21.0, 20.0, 25.0, 30.0, 35.0], False),
    ("spool_depth", [0.0, 3.0, 0.0, 0.0, 12.0, 0.0], True),
])
def test_a_figure_is_bounded_unless_its_last_third_outgrows_its_first(
    figure: str, samples: list[float], bounded: bool
) -> None:
    assert judge(Series("agent", figure, samples)).bounded is bounded


def test_a_reported_figure_is_never_a_failure_and_the_table_says_so() -> None:
    broker = judge(Series("broker", "rss_mib", [10.0, 50.0, 200.0], judged=False))
    agent = judge(Series("agent", "open_fds", [30.0, 31.0, 30.0]))
    assert broker.bounded
    text = table([broker, agent])
    assert "reported" in text.splitlines()[2] and text.splitlines()[3].endswith("ok")
