"""Seq gaps and silent agents: pure state, times passed in, no broker."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from agent.contract import Heartbeat
from detectors import integrity
from detectors.classification import ClassKind
from detectors.correlate import IntegrityKind
from detectors.criteria import classify, load_criteria
from detectors.integrity import AgentWatch
from tests.support.events import WORKDAY, make_event

CRITERIA = load_criteria(Path(__file__).parents[2] / "config" / "criteria.yaml")


def beat(at: datetime, *, last_seq: int = 0, up: int = 3, spool: int = 0) -> Heartbeat:
    return Heartbeat(agent_id="edge-01", version="t", sent_at=at, controllers_up=up,
                     controllers_total=3, spool_depth=spool, last_seq=last_seq)


def at(seconds: float) -> datetime:
    return WORKDAY + timedelta(seconds=seconds)


def watch_with_seqs(*seqs: int, silence_after_s: float = 1_000) -> AgentWatch:
    watch = AgentWatch(silence_after_s=silence_after_s, grace_s=5)
    for seq in seqs:
        watch.saw_event(make_event(seq=seq), now=at(0))
    return watch


def test_out_of_order_seqs_are_not_a_gap() -> None:
    watch = watch_with_seqs(10, 12, 11, 13)
    watch.saw_heartbeat(beat(at(1), last_seq=13))
    assert watch.findings(now=at(60), caught_up=True) == []


def test_a_missing_seq_is_a_finding_once_the_spool_is_empty_and_the_grace_passed() -> None:
    watch = watch_with_seqs(10, 11, 14)
    watch.saw_heartbeat(beat(at(1), last_seq=14, spool=2))
    assert watch.findings(now=at(30), caught_up=True) == []  # the agent still sends
    watch.saw_heartbeat(beat(at(2), last_seq=14))
    assert watch.findings(now=at(3), caught_up=True) == []  # within the grace
    assert watch.findings(now=at(20), caught_up=False) == []  # reader still behind
    (found,) = watch.findings(now=at(20), caught_up=True)
    assert found.event.event_id == "seqgap:edge-01:12-13"
    assert found.context.integrity is IntegrityKind.SEQ_GAP
    cls = classify(found.event, CRITERIA, found.context)
    assert cls.kind is ClassKind.JOINT and "DI-2" in cls.rules_fired
    assert cls.correlation_key == "integrity:edge-01"
    assert watch.findings(now=at(40), caught_up=True) == []  # reported once
    watch.saw_event(make_event(seq=12), now=at(41))  # arrives late: nothing more to say
    assert watch.findings(now=at(60), caught_up=True) == []


def test_resends_and_seqs_before_the_baseline_are_ignored() -> None:
    watch = watch_with_seqs(10, 10, 9, 11)
    watch.saw_heartbeat(beat(at(1), last_seq=11))
    assert watch.findings(now=at(60), caught_up=True) == []


def test_a_silent_agent_with_controllers_up_is_one_finding_per_last_heartbeat() -> None:
    watch = watch_with_seqs(1, silence_after_s=30)
    watch.saw_heartbeat(beat(at(0), last_seq=1))
    assert watch.findings(now=at(29), caught_up=True) == []
    (found,) = watch.findings(now=at(31), caught_up=True)
    assert found.event.event_id == f"silence:edge-01:{at(0).isoformat()}"
    assert found.event.gap is not None and found.event.gap.start == at(0)
    assert (found.event.site, found.event.line) == ("plant-1", "line-1")
    cls = classify(found.event, CRITERIA, found.context)
    assert cls.kind is ClassKind.JOINT and "DI-1" in cls.rules_fired
    assert "T0815" in cls.attack_techniques
    assert watch.findings(now=at(90), caught_up=True) == []
    watch.saw_heartbeat(beat(at(100), last_seq=1))
    watch.saw_heartbeat(beat(at(95), last_seq=1))  # an older one arriving late changes nothing
    (again,) = watch.findings(now=at(140), caught_up=True)
    assert again.event.event_id == f"silence:edge-01:{at(100).isoformat()}"


def test_silence_of_an_agent_whose_controllers_were_down_is_not_a_finding() -> None:
    watch = AgentWatch(silence_after_s=30, grace_s=5)
    watch.saw_heartbeat(beat(at(0), up=0))
    assert watch.findings(now=at(100), caught_up=True) == []


def test_a_gap_is_found_whichever_partition_is_read_first() -> None:
    """seq 14 read before 10 and 11 (another partition): 12-13 are still missing."""
    watch = watch_with_seqs(14, 10, 11)
    watch.saw_heartbeat(beat(at(1), last_seq=14))
    assert watch.findings(now=at(3), caught_up=True) == []  # the baseline is set; grace runs
    (found,) = watch.findings(now=at(20), caught_up=True)
    assert found.event.event_id == "seqgap:edge-01:12-13"


def test_a_long_history_before_the_first_catch_up_is_judged_in_bounded_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(integrity, "MAX_UNJUDGED", 10)
    watch = watch_with_seqs(*range(1, 10), 12, *range(13, 30))
    held = watch._agents["edge-01"].above  # what waits to be judged: seqs 12..29 only
    assert held == set(range(12, 30))
    watch.saw_heartbeat(beat(at(1), last_seq=29))
    (found,) = watch.findings(now=at(20), caught_up=True)
    assert found.event.event_id == "seqgap:edge-01:10-11"
