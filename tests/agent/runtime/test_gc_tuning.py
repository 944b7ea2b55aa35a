"""GC thresholds: the agent's default and the classifier's higher ones; a higher one is kept."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from agent.runtime.gc_tuning import CLASSIFIER_THRESHOLDS, YOUNG_THRESHOLD, tune_for_throughput


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_default_raises_only_the_young_threshold() -> None:
    gc.set_threshold(700, 7, 3)
    tune_for_throughput()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 7, 3)


def test_classifier_thresholds_are_set() -> None:
    gc.set_threshold(700, 10, 10)
    tune_for_throughput(CLASSIFIER_THRESHOLDS)
    assert gc.get_threshold() == CLASSIFIER_THRESHOLDS
    young, middle, _ = CLASSIFIER_THRESHOLDS
    assert young > YOUNG_THRESHOLD and middle > 10


def test_a_higher_threshold_already_set_is_kept() -> None:
    gc.set_threshold(500_000, 5, 50)
    tune_for_throughput(CLASSIFIER_THRESHOLDS)
    assert gc.get_threshold() == (500_000, CLASSIFIER_THRESHOLDS[1], 50)

