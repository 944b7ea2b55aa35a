"""A whole snapshot is written from its digest's members (`SnapshotDigest.encoded`, noted with
`agent.contract.encode.known_json`) instead of being encoded again: for values of every kind
(NaN, the infinities, -0.0, integers beyond 64 bits, lone surrogates, recipes, values long
enough to be truncated) the events' bytes, alone and signed in a batch, are the bytes the
model gives (pydantic's ``model_dump``) and the bytes of the encoder without the note."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.baseline import ControllerBaseline
from agent.config import AgentConfig
from agent.contract import EventSigner, SuspectChange
from agent.contract import encode as encode_module
from agent.contract.limits import EventLimits
from agent.contract.values import canonical_json
from agent.runner import approval_book
from agent.sources.base import Connected, Reading, Readings
from agent.watcher import AgentIdentity, ControllerWatcher

NAMES = ["sp_b", "sp_a", "Zeta", "sp.9", "sp_10", "A-tag"]
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SIGNER = EventSigner.generate()
LIMITS = EventLimits(max_value_bytes=200, head_chars=8)
CONFIG = AgentConfig.model_validate({
    "agent": {"id": "edge-enc", "site": "plant-1", "state_dir": "/nonexistent"},
    "kafka": {"bootstrap_servers": "127.0.0.1:1"},
    "metrics": {"port": 0},
    "controllers": [{
        "id": "opc-1", "protocol": "opcua", "endpoint": "opc.tcp://127.0.0.1:4840",
        "tags": [{"name": n, "kind": "setpoint", "node": f"ns=2;s={i}"}
                 for i, n in enumerate(NAMES)],
    }],
})

values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from([-0.0, math.nan, -math.inf, "\ud800 lone", 2**64, "x" * 500]),
    st.dictionaries(st.text(max_size=5),
                    st.floats(allow_nan=True) | st.text(max_size=5) | st.lists(st.integers()),
                    max_size=3),
)
scans = st.lists(st.fixed_dictionaries({n: values for n in NAMES}), min_size=1, max_size=3)


async def _events(scans: list[dict[str, Any]]) -> list[SuspectChange]:
    seen: list[SuspectChange] = []

    async def sink(events: list[SuspectChange], moved: Mapping[str, Reading]) -> None:
        seen.extend(events)

    controller = CONFIG.controllers[0]
    watcher = ControllerWatcher(AgentIdentity("edge-enc", "plant-1"), controller,
                                ControllerBaseline(), approval_book(CONFIG), sink, LIMITS)
    await watcher.on_event(Connected(T0, session="s1"))
    await watcher.on_event(Readings(T0, {n: Reading(float(i), T0) for i, n in enumerate(NAMES)}))
    for k, scan in enumerate(scans, 1):
        at = T0 + timedelta(seconds=k)
        await watcher.on_event(Readings(at, {n: Reading(v, at) for n, v in scan.items()},
                                        complete=False))
    return seen


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scans)
def test_the_events_bytes_are_the_models_with_or_without_the_note(
    scans: list[dict[str, Any]],
) -> None:
    events = asyncio.run(_events(scans))
    noted = [e.to_json() for e in events]
    signed = SIGNER.batch_messages(events, first_seq=1)
    encode_module._KNOWN.clear()  # the encoder without the note: every value encoded
    assert noted == [e.to_json() for e in events]
    assert noted == [canonical_json(e.model_dump(mode="json", by_alias=True)) for e in events]
    assert signed == SIGNER.batch_messages(events, first_seq=1)  # Ed25519 is deterministic


def test_a_snapshot_of_numbers_is_noted_and_written_from_the_members() -> None:
    scan = {n: float(i) + 0.5 for i, n in enumerate(NAMES)}
    (event,) = [e for e in asyncio.run(_events([scan])) if e.snapshot is not None][-1:]
    assert event.snapshot is not None
    assert id(event.snapshot.values) in encode_module._KNOWN


def test_a_truncated_value_is_not_noted() -> None:
    scan: dict[str, Any] = {n: float(i) for i, n in enumerate(NAMES)} | {"sp_a": "y" * 500}
    events = [e for e in asyncio.run(_events([scan])) if e.snapshot is not None]
    assert events
    assert all(id(e.snapshot.values) not in encode_module._KNOWN for e in events if e.snapshot)
