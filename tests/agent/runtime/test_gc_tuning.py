"""GC thresholds: the default, the agent's and the classifier's; a higher one is kept; the
agent's long-lived objects are frozen once it is ready, its garbage is not."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.runtime.gc_tuning import (
    AGENT_THRESHOLDS,
    CLASSIFIER_THRESHOLDS,
    YOUNG_THRESHOLD,
    freeze_long_lived,
    tune_for_throughput,
)
from simulators.runtime import SimulatedPlant
from tests.agent.test_agent_detects import config_for, running


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


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



def test_agent_thresholds_are_set() -> None:
    gc.set_threshold(700, 10, 10)
    tune_for_throughput(AGENT_THRESHOLDS)
    assert gc.get_threshold() == AGENT_THRESHOLDS
    assert AGENT_THRESHOLDS[0] > YOUNG_THRESHOLD


class _Node:
    def __init__(self) -> None:
        self.peer: _Node | None = None


def test_freeze_long_lived_freezes_live_objects_and_collects_garbage_first() -> None:
    live = _Node()
    garbage = _Node()
    garbage.peer = garbage  # a reference cycle: only the collector frees it
    alive_after = weakref.ref(live)
    freed = weakref.ref(garbage)
    del garbage
    before = gc.get_freeze_count()
    freeze_long_lived()
    assert freed() is None  # collected, not frozen (it would stay for good)
    assert gc.get_freeze_count() > before
    assert not any(o is live for o in gc.get_objects())  # out of every generation
    gc.collect()
    assert alive_after() is live


@pytest.mark.integration
@pytest.mark.asyncio(loop_scope="module")
async def test_a_ready_agent_has_frozen_what_it_started(
    plant: SimulatedPlant, tmp_path: Path
) -> None:
    gc.unfreeze()
    async with running(config_for(plant, tmp_path)):
        assert gc.get_threshold() == AGENT_THRESHOLDS
        # The watch tasks start after `Agent.run` tuned the collector: only the freeze once
        # ready takes them out of the generations (frozen objects are in none of them).
        watching = [t for t in asyncio.all_tasks() if t.get_name().startswith("watch ")]
        assert watching
        tracked = {id(o) for o in gc.get_objects()}
        assert not [t.get_name() for t in watching if id(t) in tracked]
