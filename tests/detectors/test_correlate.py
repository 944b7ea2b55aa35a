"""Bursts across controllers: pure state, times passed in, no broker."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from agent.contract import SuspectChange
from detectors.classification import ClassKind
from detectors.correlate import NO_CONTEXT, BurstCorrelator, BurstSettings
from detectors.criteria import classify, load_criteria
from tests.support.events import WORKDAY, make_event

CRITERIA = load_criteria(Path(__file__).parents[2] / "config" / "criteria.yaml")
SETTINGS = BurstSettings(min_controllers=3, window_s=10)


def change(
    controller: str, at_s: float, validated: bool = True, **overrides: object
) -> SuspectChange:
    at = WORKDAY + timedelta(seconds=at_s)
    return make_event(controller={"id": controller, "validated": validated}, detected_at=at,
                      occurred_at=at, **overrides)


def test_three_controllers_within_the_window_share_the_first_events_key() -> None:
    bursts: BurstCorrelator[int] = BurstCorrelator(SETTINGS)
    now = WORKDAY
    first = bursts.offer(change("press-01", 0), 1, now=now)
    assert [(ctx, tok) for _, ctx, tok in first] == [(NO_CONTEXT, 1)]
    assert bursts.offer(change("press-02", 0.3), 2, now=now) == []  # held: maybe a burst
    assert bursts.held_tokens() == [2]
    third = bursts.offer(change("oven-01", 0.6), 3, now=now)
    assert [tok for _, _, tok in third] == [2, 3]
    assert {ctx.correlation_key for _, ctx, _ in third} == {"plant-1/press-01"}
    assert all(ctx.burst_controllers == 3 for _, ctx, _ in third)
    later = bursts.offer(change("press-02", 1.0), 4, now=now)
    assert later[0][1].correlation_key == "plant-1/press-01"
    # the first event, classified without context, carries that same key by itself
    assert classify(first[0][0], CRITERIA).correlation_key == "plant-1/press-01"


def test_two_controllers_are_not_a_burst_and_the_hold_is_released_after_the_window() -> None:
    bursts: BurstCorrelator[int] = BurstCorrelator(SETTINGS)
    bursts.offer(change("press-01", 0), 1, now=WORKDAY)
    assert bursts.offer(change("oven-01", 2), 2, now=WORKDAY) == []
    assert bursts.due(now=WORKDAY + timedelta(seconds=5)) == []
    released = bursts.due(now=WORKDAY + timedelta(seconds=11))
    assert [(ctx, tok) for _, ctx, tok in released] == [(NO_CONTEXT, 2)]
    assert bursts.held_tokens() == []


def test_an_event_after_the_window_starts_a_new_episode_and_releases_the_old_holds() -> None:
    bursts: BurstCorrelator[int] = BurstCorrelator(SETTINGS)
    bursts.offer(change("press-01", 0), 1, now=WORKDAY)
    bursts.offer(change("oven-01", 1), 2, now=WORKDAY)
    released = bursts.offer(change("press-02", 30), 3, now=WORKDAY)
    assert [tok for _, _, tok in released] == [2, 3]
    assert all(ctx == NO_CONTEXT for _, ctx, _ in released)


def test_other_lines_and_authorized_changes_do_not_count() -> None:
    bursts: BurstCorrelator[int] = BurstCorrelator(SETTINGS)
    bursts.offer(change("press-01", 0), 1, now=WORKDAY)
    assert bursts.offer(change("press-02", 0.1, verdict="authorized"), 2, now=WORKDAY)
    assert bursts.offer(change("press-03", 0.2, line="line-2"), 3, now=WORKDAY)
    assert bursts.offer(change("oven-01", 0.3), 4, now=WORKDAY) == []


def test_dropped_tokens_are_forgotten() -> None:
    bursts: BurstCorrelator[int] = BurstCorrelator(SETTINGS)
    bursts.offer(change("press-01", 0), 1, now=WORKDAY)
    bursts.offer(change("oven-01", 1), 2, now=WORKDAY)
    bursts.drop(lambda tok: tok == 2)
    assert bursts.held_tokens() == []


def test_burst_rule_makes_a_non_ctq_change_a_finding_on_the_burst_key() -> None:
    bursts: BurstCorrelator[int] = BurstCorrelator(SETTINGS)
    # Routine on its own (criteria N-2): not critical, not validated, a known actor.
    known = {"tag": {"critical_to_quality": False}, "actor": "j.doe", "validated": False}
    bursts.offer(change("press-01", 0, **known), 1, now=WORKDAY)
    bursts.offer(change("press-02", 0.1, **known), 2, now=WORKDAY)
    released = bursts.offer(change("oven-01", 0.2, **known), 3, now=WORKDAY)
    ev, ctx, _ = released[-1]
    assert classify(ev, CRITERIA).kind is ClassKind.NONE
    cls = classify(ev, CRITERIA, ctx)
    assert (cls.kind, cls.rules_fired) == (ClassKind.SECURITY_ONLY, ("S-3",))
    assert cls.correlation_key == "plant-1/press-01"
    assert cls.attack_techniques == ("T0831",)


def test_a_process_sharing_the_partitions_holds_the_first_controller_too() -> None:
    """Another process may have seen this line's burst begin: the first event waits as well,
    and a recognised burst carries the line's key for the records store to claim."""
    bursts: BurstCorrelator[int] = BurstCorrelator(SETTINGS)
    bursts.shared = True
    assert bursts.offer(change("press-01", 0), 1, now=WORKDAY) == []
    assert bursts.offer(change("press-02", 0.5), 2, now=WORKDAY) == []
    assert bursts.held_tokens() == [1, 2]
    third = bursts.offer(change("oven-01", 1), 3, now=WORKDAY)
    assert [tok for _, _, tok in third] == [1, 2, 3]
    assert {(ctx.correlation_key, ctx.line_key) for _, ctx, _ in third} == {
        ("plant-1/press-01", "burst:plant-1/line-1")}
    cls = classify(third[0][0], CRITERIA, third[0][1])
    assert (cls.correlation_key, cls.line_key) == ("plant-1/press-01", "burst:plant-1/line-1")
    # Alone, a held first event is released after the window without a burst's context.
    alone: BurstCorrelator[int] = BurstCorrelator(SETTINGS)
    alone.shared = True
    assert alone.offer(change("press-01", 0), 1, now=WORKDAY) == []
    released = alone.due(now=WORKDAY + timedelta(seconds=11))
    assert [(ctx, tok) for _, ctx, tok in released] == [(NO_CONTEXT, 1)]
    assert classify(released[0][0], CRITERIA).line_key == ""
