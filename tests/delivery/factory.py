"""Valid SuspectChange events for the delivery tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from agent.contract import (
    ChangeKind,
    ControllerRef,
    Protocol,
    SuspectChange,
    TagKind,
    TagRef,
    Verdict,
)

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def make_event(
    i: int,
    *,
    controller: str = "press-01",
    verdict: Verdict = Verdict.UNAPPROVED,
    site: str = "plant-1",
    agent_id: str = "agent-1",
    event_id: str | None = None,
) -> SuspectChange:
    """Event number ``i`` (seq 0: the spool assigns the real one)."""
    at = T0 + timedelta(seconds=i)
    return SuspectChange(
        event_id=event_id or str(uuid.uuid4()),
        seq=0,
        agent_id=agent_id,
        site=site,
        line="line-1",
        controller=ControllerRef(id=controller, protocol=Protocol.MODBUS, endpoint="127.0.0.1:502"),
        tag=TagRef(name="zone1.temp_sp", address="holding:100", kind=TagKind.SETPOINT, unit="degC"),
        old_value=float(i),
        new_value=float(i + 1),
        occurred_at=at,
        detected_at=at,
        change_kind=ChangeKind.SETPOINT_CHANGE,
        verdict=verdict,
        verdict_reason="no approved change record",
    )


def make_events(n: int, controllers: int = 3, *, start: int = 0) -> list[SuspectChange]:
    """``n`` events spread round-robin over ``controllers`` controllers, every 7th authorized."""
    return [
        make_event(
            i,
            controller=f"press-{i % controllers:02d}",
            verdict=Verdict.AUTHORIZED if i % 7 == 0 else Verdict.UNAPPROVED,
        )
        for i in range(start, start + n)
    ]
