"""The offset ledger, table-driven: what may be committed, when. Pure: no Kafka, no clock.

Each case is a script of what the group consumer does, in order:

- ``("consumed", partition, last_offset)``: messages read up to ``last_offset``;
- ``("recorded", name, held)``: the batch's records transaction committed, while the burst
  correlator holds the events at ``held`` [(partition, offset)]; the plan is kept as ``name``;
- ``("acked", name, assigned, expected)``: the plan's messages are acknowledged, the process
  owns ``assigned``; ``expected`` is what the ledger says to commit now (then it is committed);
- ``("revoked", partitions)``: a rebalance took them away.
"""

from __future__ import annotations

from typing import Any

import pytest

from detectors.offsets import OffsetLedger

Step = tuple[Any, ...]

CASES: dict[str, list[Step]] = {
    "everything consumed is committed after the acks": [
        ("consumed", "p0", 9),
        ("recorded", "b1", []),
        ("acked", "b1", {"p0"}, {"p0": 10}),
    ],
    "a held event keeps its partition's commit below it": [
        ("consumed", "p0", 9),
        ("consumed", "p1", 4),
        ("recorded", "b1", [("p0", 7), ("p0", 5)]),
        ("acked", "b1", {"p0", "p1"}, {"p0": 5, "p1": 5}),
        ("consumed", "p0", 19),
        ("recorded", "b2", []),  # the burst was decided: the held events are recorded now
        ("acked", "b2", {"p0", "p1"}, {"p0": 20}),
    ],
    "pipelined batches commit in turn": [
        ("consumed", "p0", 9),
        ("recorded", "b1", []),
        ("consumed", "p0", 19),
        ("recorded", "b2", []),
        ("acked", "b1", {"p0"}, {"p0": 10}),
        ("acked", "b2", {"p0"}, {"p0": 20}),
    ],
    "nothing new read: nothing to commit": [
        ("consumed", "p0", 9),
        ("recorded", "b1", []),
        ("acked", "b1", {"p0"}, {"p0": 10}),
        ("recorded", "b2", []),
        ("acked", "b2", {"p0"}, {}),
    ],
    "a commit never moves back": [
        ("consumed", "p0", 9),
        ("recorded", "b1", []),
        ("consumed", "p0", 19),
        ("recorded", "b2", []),
        ("acked", "b2", {"p0"}, {"p0": 20}),
        ("acked", "b1", {"p0"}, {}),
    ],
    "only partitions still assigned are committed": [
        ("consumed", "p0", 9),
        ("consumed", "p1", 9),
        ("recorded", "b1", []),
        ("acked", "b1", {"p1"}, {"p1": 10}),
    ],
    "a revoked partition is forgotten, also in plans awaiting their acks": [
        ("consumed", "p0", 9),
        ("consumed", "p1", 9),
        ("recorded", "b1", [("p0", 3)]),
        ("revoked", {"p0"}),
        ("acked", "b1", {"p0", "p1"}, {"p1": 10}),  # p0 came back: it reads from its last commit
        ("recorded", "b2", []),
        ("acked", "b2", {"p0", "p1"}, {}),
    ],
    "a partition assigned again starts from what it reads next": [
        ("consumed", "p0", 9),
        ("recorded", "b1", []),
        ("acked", "b1", {"p0"}, {"p0": 10}),
        ("revoked", {"p0"}),
        ("consumed", "p0", 14),
        ("recorded", "b2", []),
        ("acked", "b2", {"p0"}, {"p0": 15}),
    ],
    "a plan is acknowledged once": [
        ("consumed", "p0", 9),
        ("recorded", "b1", []),
        ("acked", "b1", {"p0"}, {"p0": 10}),
        ("acked", "b1", {"p0"}, {}),
    ],
}


def play(steps: list[Step]) -> OffsetLedger[str]:
    ledger: OffsetLedger[str] = OffsetLedger()
    plans: dict[str, int] = {}
    for step in steps:
        match step:
            case ("consumed", partition, last_offset):
                ledger.consumed(partition, last_offset)
            case ("recorded", name, held):
                plans[name] = ledger.recorded(held)
            case ("acked", name, assigned, expected):
                offsets = ledger.acknowledged(plans[name], assigned)
                assert offsets == expected, f"{step}: got {offsets}"
                ledger.committed(offsets)
            case ("revoked", partitions):
                ledger.revoked(partitions)
            case _:
                raise AssertionError(f"unknown step {step}")
    return ledger


@pytest.mark.parametrize("steps", CASES.values(), ids=CASES.keys())
def test_ledger(steps: list[Step]) -> None:
    play(steps)


def test_positions_give_the_lag_and_plans_do_not_pile_up() -> None:
    ledger = play([
        ("consumed", "p0", 9), ("consumed", "p1", 2), ("recorded", "b1", []),
        ("acked", "b1", {"p0", "p1"}, {"p0": 10, "p1": 3}), ("revoked", {"p1"}),
    ])
    assert ledger.positions() == {"p0": 10}
    assert ledger.pending() == 0
