"""The watcher between sessions, driven with the source events an OPC UA source produces (no
sockets, no clock): where a monitoring gap starts and ends, which program download a server
restart and a gap belong to and the verdict they get from it, and what every event carries
(the measurements in its context, the evidence snapshot in the suspect ones)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.baseline import ControllerBaseline
from agent.config import OpcuaControllerConfig, load_agent_config
from agent.contract import ChangeKind, SuspectChange, Verdict, take_snapshot
from agent.contract.limits import EventLimits
from agent.runner import approval_book
from agent.sources.base import Alive, Connected, Disconnected, Reading, Readings
from agent.watcher import SESSION_TAG, AgentIdentity, ControllerWatcher

CONFIG = Path(__file__).parents[2] / "config" / "agent.yaml"
T0 = datetime.now(UTC).replace(microsecond=0)
OLD, NEW = "9f2c4e1a7b3d5f60", "4b1d9e07c3a25f88"
pytestmark = pytest.mark.asyncio


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def approval(checksum: str) -> str:
    """An approvals file with one program approval for the oven, valid around now."""
    return f"""approvals:
  - id: CR-DL-1
    controller: oven-01
    tag: program_checksum
    change: program
    expected: {{checksum: {checksum}}}
    valid_from: {(T0 - timedelta(hours=1)).isoformat()}
    valid_until: {(T0 + timedelta(hours=1)).isoformat()}
    approved_by: eng.k
    single_use: true
"""


class Oven:
    """A watcher of the sample config's oven-01 and every event it made durable."""

    def __init__(self, tmp_path: Path, approvals: str = "approvals: []\n",
                 **update: Any) -> None:
        file = tmp_path / "approvals.yaml"
        file.write_text(approvals)
        config = load_agent_config(CONFIG)
        config = config.model_copy(update={
            "agent": config.agent.model_copy(update={"state_dir": tmp_path}),
            # No broker here: single-use approvals are kept in the state dir only (with uses
            # recorded on Kafka, none authorises until that topic has been read).
            "approvals": config.approvals.model_copy(
                update={"files": [file], "record_uses_on_kafka": False}
            ),
        })
        oven = config.controller("oven-01")
        assert isinstance(oven, OpcuaControllerConfig)
        self.config = oven.model_copy(update={"monitoring_gap_min_s": 1.0, **update})
        self.events: list[SuspectChange] = []
        self.values = {
            "temperature_sp": 200.0, "dwell_time_sp": 30.0, "temperature_actual": 199.5,
            "recipe_id": "R-100", "recipe_version": 1, "recipe_temperature": 200.0,
            "recipe_dwell_time": 30.0, "lot_id": "LOT-0001", "program_checksum": OLD,
            "mode": "AUTO",
        }
        self.watcher = ControllerWatcher(
            AgentIdentity("agent-test", "plant-1"), self.config, ControllerBaseline(),
            approval_book(config), self.sink, EventLimits(),
        )

    async def sink(self, events: list[SuspectChange], moved: Mapping[str, Reading]) -> None:
        self.events.extend(events)

    async def connect(self, seconds: float, session: str) -> None:
        """A new session and its full read (every tag)."""
        await self.watcher.on_event(Connected(at(seconds), session=session))
        readings = {name: Reading(v) for name, v in self.values.items()}
        await self.watcher.on_event(Readings(at(seconds), readings))

    async def notify(self, seconds: float, **changed: Any) -> None:
        """A subscription's notification: only what changed."""
        self.values.update(changed)
        readings = {name: Reading(v) for name, v in changed.items()}
        await self.watcher.on_event(Readings(at(seconds), readings, complete=False))

    async def lose(self, seconds: float) -> None:
        await self.watcher.on_event(Disconnected(at(seconds), reason="connection lost"))

    def summary(self) -> list[tuple[str, str, str]]:
        return [(e.tag.name, e.change_kind.value, e.verdict.value) for e in self.events]

    def session_events(self) -> dict[str, SuspectChange]:
        """The gap and the restart of the last reconnect, by change kind."""
        return {e.change_kind.value: e for e in self.events if e.tag.name == SESSION_TAG}


async def started(tmp_path: Path, approvals: str = "approvals: []\n", **update: Any) -> Oven:
    oven = Oven(tmp_path, approvals, **update)
    await oven.connect(0, "server-start:1")
    assert oven.events == []  # the first scan learns the baseline
    return oven


async def test_a_gap_runs_from_the_last_keep_alive_to_the_first_full_read_after(
    tmp_path: Path,
) -> None:
    oven = await started(tmp_path)
    await oven.notify(5, temperature_actual=200.5)  # a notification
    await oven.watcher.on_event(Alive(at(12)))  # then only keep-alives: still watched
    await oven.lose(13)
    await oven.watcher.on_event(Alive(at(14)))  # a late one after the loss moves nothing
    await oven.connect(20, "server-start:1")  # the same server: a network blip, no restart
    (gap,) = oven.events
    assert (gap.tag.name, gap.change_kind, gap.verdict) == (
        SESSION_TAG, ChangeKind.MONITORING_GAP, Verdict.UNAPPROVED)
    assert gap.gap is not None and (gap.gap.start, gap.gap.end) == (at(12), at(20))
    assert (gap.occurred_at, gap.detected_at) == (at(12), at(20))
    assert "could not see oven-01 for 8.0 s" in gap.verdict_reason


async def test_a_gap_without_keep_alives_starts_at_the_last_notification(tmp_path: Path) -> None:
    oven = await started(tmp_path)
    await oven.notify(4, temperature_actual=201.0)
    await oven.lose(30)
    await oven.connect(31, "server-start:1")
    (gap,) = oven.events
    assert gap.gap is not None and (gap.gap.start, gap.gap.end) == (at(4), at(31))


async def test_an_approved_download_covers_the_restart_and_the_gap(tmp_path: Path) -> None:
    oven = await started(tmp_path, approval(NEW))
    await oven.notify(5, program_checksum=NEW)
    await oven.lose(6)
    await oven.connect(9, "server-start:2")
    assert oven.summary() == [
        ("program_checksum", "program_change", "authorized"),
        (SESSION_TAG, "monitoring_gap", "authorized"),
        (SESSION_TAG, "program_change", "authorized"),
    ]
    download = oven.events[0]
    assert download.verdict_reason.startswith(
        f"program download on oven-01: program_checksum '{OLD}' -> '{NEW}'; matches approval")
    for event in oven.session_events().values():
        assert event.approval is not None and event.approval.id == "CR-DL-1"
        assert "after the approved program download on oven-01" in event.verdict_reason
        assert event.snapshot is None  # nothing suspect here
    gap = oven.session_events()["monitoring_gap"].gap
    assert gap is not None and (gap.start, gap.end) == (at(5), at(9))


async def test_after_an_unapproved_download_the_download_stands_first(tmp_path: Path) -> None:
    oven = await started(tmp_path, approval(NEW))
    bad = "e3a0c55d19b7f402"
    oven.values["program_checksum"] = bad
    await oven.watcher.on_event(
        Readings(at(5), {"program_checksum": Reading(bad)}, complete=False,
                 actors={"program_checksum": "unknown"}))
    await oven.lose(6)
    await oven.connect(9, "server-start:2")
    download, *session = oven.events
    assert (download.tag.name, download.verdict) == ("program_checksum", Verdict.VALUE_MISMATCH)
    assert download.verdict_reason.startswith(
        f"program download on oven-01 by unknown: program_checksum '{OLD}' -> '{bad}'; ")
    assert [(e.change_kind.value, e.verdict.value) for e in session] == [
        ("monitoring_gap", "unapproved"), ("program_change", "unapproved")]
    for event in session:
        assert event.approval is None
        assert "after the program download on oven-01: program_checksum" in event.verdict_reason
        assert "which was not approved (value_mismatch)" in event.verdict_reason


async def test_a_download_made_while_unwatched_explains_its_restart(tmp_path: Path) -> None:
    """The checksum changed while the agent could not look: the reconnect's scan finds it,
    first in its batch, and the restart and the gap that came with it are covered."""
    oven = await started(tmp_path, approval(NEW))
    await oven.lose(6)
    oven.values.update(program_checksum=NEW, temperature_sp=205.0)
    await oven.connect(9, "server-start:2")
    assert oven.summary() == [
        ("program_checksum", "changed_while_unwatched", "authorized"),
        ("temperature_sp", "changed_while_unwatched", "unapproved"),
        (SESSION_TAG, "monitoring_gap", "authorized"),
        (SESSION_TAG, "program_change", "authorized"),
    ]


async def test_the_restart_belongs_to_the_download_before_the_loss_not_after(
    tmp_path: Path,
) -> None:
    """An approved download, its restart, and a second (unapproved) download found by the
    reconnect's scan: the restart is the first download's; the second waits for its own."""
    oven = await started(tmp_path, approval(NEW))
    await oven.notify(5, program_checksum=NEW)
    await oven.lose(6)
    oven.values.update(program_checksum="e3a0c55d19b7f402")
    await oven.connect(9, "server-start:2")
    assert oven.summary()[1:] == [  # (the approval is single use: spent by the first)
        ("program_checksum", "changed_while_unwatched", "unapproved"),
        (SESSION_TAG, "monitoring_gap", "authorized"),
        (SESSION_TAG, "program_change", "authorized"),
    ]
    oven.events.clear()
    await oven.lose(12)
    await oven.connect(15, "server-start:3")
    assert oven.summary() == [
        (SESSION_TAG, "monitoring_gap", "unapproved"),
        (SESSION_TAG, "program_change", "unapproved"),
    ]
    assert "e3a0c55d19b7f402" in oven.events[1].verdict_reason


async def test_a_restart_long_after_a_download_is_its_own_finding(tmp_path: Path) -> None:
    oven = await started(tmp_path, approval(NEW), download_restart_s=60.0)
    await oven.notify(5, program_checksum=NEW)
    await oven.lose(5 + 61)
    await oven.connect(70, "server-start:2")
    restart = oven.session_events()["program_change"]
    assert restart.verdict is Verdict.UNAPPROVED and restart.approval is None
    assert restart.verdict_reason == (
        "the OPC UA server of oven-01 restarted (possible program download)")


async def test_a_standing_reload_approval_does_not_cover_a_restart(tmp_path: Path) -> None:
    """An approval of the program the controller runs cannot tell a reload from a crash: a
    restart without a download seen stays a finding."""
    oven = await started(tmp_path, approval(OLD))
    await oven.lose(6)
    await oven.connect(9, "server-start:2")
    assert oven.summary() == [
        (SESSION_TAG, "monitoring_gap", "unapproved"),
        (SESSION_TAG, "program_change", "unapproved"),
    ]


async def test_measurements_are_context_and_the_snapshot_is_in_suspect_events(
    tmp_path: Path,
) -> None:
    oven = await started(tmp_path, approval(NEW))
    await oven.notify(3, temperature_actual=207.25)  # a measurement moves: no event
    assert oven.events == []
    await oven.notify(5, program_checksum=NEW, temperature_sp=230.0)
    authorized, suspect = oven.events  # the download first
    assert (authorized.tag.name, authorized.verdict) == ("program_checksum", Verdict.AUTHORIZED)
    assert (suspect.tag.name, suspect.verdict) == ("temperature_sp", Verdict.UNAPPROVED)
    for event in oven.events:
        assert event.context == {"temperature_actual": 207.25, "recipe": "R-100",
                                 "lot": "LOT-0001"}
    assert authorized.snapshot is None
    assert suspect.snapshot is not None
    watched = {name: v for name, v in oven.values.items() if name != "lot_id"}
    assert suspect.snapshot.values == watched  # after the change, the measurement included
    assert suspect.snapshot == take_snapshot(watched, EventLimits())


async def test_a_large_snapshot_travels_whole_at_most_once_a_second(tmp_path: Path) -> None:
    """Past `SHARED_SNAPSHOT_VALUES` values, the batch's first suspect event carries them (at
    most once every `LARGE_SNAPSHOT_EVERY_S`) and the others the hash of the values at their
    own detection, naming ``snapshot.values`` as omitted."""
    import agent.reports

    oven = await started(tmp_path)
    original = agent.reports.SHARED_SNAPSHOT_VALUES
    agent.reports.SHARED_SNAPSHOT_VALUES = 3
    try:
        await oven.notify(5, temperature_sp=230.0, dwell_time_sp=40.0, mode="MANUAL")
        await oven.notify(6, temperature_sp=231.0)  # within the second: the hash only
    finally:
        agent.reports.SHARED_SNAPSHOT_VALUES = original
    first, *rest, later = oven.events
    assert len(rest) == 2 and first.snapshot is not None and len(first.snapshot.values) == 9
    assert first.omitted is None
    for event in rest:
        assert event.snapshot is not None and event.snapshot.values == {}
        assert event.snapshot.sha256 == first.snapshot.sha256
        assert event.omitted == ["snapshot.values"]
    watched = {name: v for name, v in oven.values.items() if name != "lot_id"}
    assert later.snapshot is not None and later.snapshot.values == {}
    assert later.snapshot.sha256 == take_snapshot(watched, EventLimits()).sha256
    assert later.omitted == ["snapshot.values"]
