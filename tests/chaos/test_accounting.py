"""The chaos accounting's one judgement call: a change made and overwritten while the test had
the agent killed is accounted for by the monitoring gap the agent reported across it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from simulators.scenario_model import Label
from tests.chaos.accounting import Ledger, account

T0 = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)


def label(seq: int, at_s: float, old: float, new: float) -> Label:
    return Label(time=T0 + timedelta(seconds=at_s), scenario="t", seq=seq, action="change",
                 controller="press-02", tag="temperature_sp", old_value=old, new_value=new,
                 change_kind="setpoint_change", expected_verdict="unapproved", actor="unknown")


def event(kind: str, new: Any, gap: tuple[float, float] | None = None,
          tag: str = "temperature_sp") -> dict[str, Any]:
    ev: dict[str, Any] = {"controller": {"id": "press-02"}, "tag": {"name": tag},
                          "new_value": new, "verdict": "unapproved", "change_kind": kind}
    if gap is not None:
        ev["gap"] = {"start": (T0 + timedelta(seconds=gap[0])).isoformat(),
                     "end": (T0 + timedelta(seconds=gap[1])).isoformat()}
    return ev


LABELS = [label(1, 5, 180.0, float("nan")), label(2, 8, float("nan"), float("inf"))]
KILLED_AT = T0 + timedelta(seconds=5.2)


def ledger(gap: tuple[float, float]) -> Ledger:
    return Ledger(events={"e-inf": event("setpoint_change", {"$float": "Infinity"}),
                          "e-gap": event("monitoring_gap", None, gap, tag="_session")},
                  processed=["e-inf", "e-gap"])


def test_a_change_overwritten_inside_a_gap_across_the_kill_is_accounted_for() -> None:
    assert account(LABELS, ledger((4.9, 9.0)), blind_at=[KILLED_AT]) == []


def test_without_the_kill_the_same_ledger_is_a_lost_change_and_an_unexplained_gap() -> None:
    problems = account(LABELS, ledger((4.9, 9.0)))
    assert [p.split(":")[0] for p in problems] == ["lost", "unexplained"]


def test_a_gap_that_ends_before_the_next_change_leaves_the_change_lost() -> None:
    problems = account(LABELS, ledger((4.9, 7.0)), blind_at=[KILLED_AT])
    assert problems == ["lost: press-02/temperature_sp -> ('float', 'NaN'): 1 change(s), "
                        "0 event(s)"]
