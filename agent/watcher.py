"""One controller's watcher: source events in, `SuspectChange` events out.

The watcher keeps the controller's baseline and connection state. For each scan it finds
the changes (`agent.detect`), asks change control for a verdict (`agent.approvals`), and
hands the finished events to the sink, which makes them durable in the spool before the
baseline moves on. After a (re)connect it also reports what it could not see: the
monitoring gap, values changed while unwatched, a restarted server, and each watched tag whose
node the session could not resolve (a monitoring gap on that tag, reported once per spell). The
same holds for single tags the controller could not give (``Readings.bad``, e.g. a Modbus
exception for one request): once a tag is read again, its monitoring gap (last good read to
first good read after) is reported, and a change found then is ``changed_while_unwatched``.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agent import metrics
from agent.approvals import ApprovalBook
from agent.baseline import ControllerBaseline
from agent.config import ModbusControllerConfig, OpcuaControllerConfig, TagBase
from agent.contract import (
    ChangeKind,
    ControllerRef,
    MonitoringGap,
    Protocol,
    SuspectChange,
    TagKind,
    TagRef,
    TagValue,
    Verdict,
)
from agent.contract.limits import EventLimits, fit_event
from agent.detect import Change, detect_changes, next_baseline, same_value
from agent.recipes import RecipeTag, settle_recipes
from agent.sources.base import Connected, Disconnected, Reading, Readings, SourceEvent
from agent.spool import SpoolFull

#: (events, {tag: the reading its baseline moves to}) → durable, or raises `SpoolFull`.
EventSink = Callable[[list[SuspectChange], Mapping[str, Reading]], Awaitable[None]]
ControllerConfig = ModbusControllerConfig | OpcuaControllerConfig

#: The pseudo-tag that carries session events (server restart, monitoring gap).
SESSION_TAG = "_session"


@dataclass(frozen=True)
class AgentIdentity:
    agent_id: str
    site: str


class ControllerWatcher:
    def __init__(
        self,
        identity: AgentIdentity,
        config: ControllerConfig,
        baseline: ControllerBaseline,
        approvals: ApprovalBook,
        sink: EventSink,
        limits: EventLimits | None = None,
    ) -> None:
        self.identity = identity
        #: Every event is built within these: no value, no event too large to publish.
        self.limits = limits or EventLimits()
        self.config = config
        self.baseline = baseline
        self.approvals = approvals
        self.sink = sink
        members = {m for r in config.recipes for m in r.members}
        #: Watched tags reported one by one; recipe members are reported as their recipe.
        self._single_tags: list[TagBase] = [
            t for t in config.tags
            if t.kind is not None and t.kind is not TagKind.MEASUREMENT and t.name not in members
        ]
        self._single_by_name = {t.name: t for t in self._single_tags}
        #: Every watched tag by name (recipe members too): those a gap can be reported for.
        self._watched = {
            t.name: t for t in config.tags
            if t.kind is not None and t.kind is not TagKind.MEASUREMENT
        }
        #: Tags the controller gives no value for: since when (their last good read), and why.
        self.unreadable: dict[str, tuple[datetime, str]] = {}
        self._latest: dict[str, Reading] = dict(baseline.tags)
        #: Recipes seen changed but not yet settled, and when each pending value was first seen.
        self._pending: dict[str, dict[str, Any]] = {}
        self._pending_since: dict[str, float] = {}
        #: A recipe settles by time (a tick, or a subscription batch that may not carry its
        #: members) only once this long passed without it changing: a member written a moment
        #: after another is then surely in (two looks: sampling plus publishing, or a poll).
        self._settle_s = 2 * config.look_interval_s
        self.context_tags = {t.name: t.context for t in config.tags if t.context is not None}
        self.context: dict[str, TagValue] = {}
        self.ref = ControllerRef(
            id=config.id,
            protocol=Protocol(config.protocol),
            endpoint=config.endpoint,
            validated=config.validated,
        )
        self.up = False
        # A gap is reported once the controller is seen again; on start it runs from the
        # last scan the previous agent run saw.
        self._gap_start: datetime | None = baseline.last_seen
        self._fresh = True
        self._session: str | None = None
        self._min_gap = timedelta(seconds=config.monitoring_gap_min_s)
        #: Tags the current session cannot watch (with why), and those already reported.
        self._unresolved: dict[str, str] = {}
        self._unresolved_reported: set[str] = set()

    async def on_event(self, event: SourceEvent) -> None:
        if isinstance(event, Connected):
            self._fresh, self._session = True, event.session
            self._unresolved = event.unresolved
        elif isinstance(event, Disconnected):
            self.up = False
            self._fresh = True
            if self._gap_start is None:
                self._gap_start = self.baseline.last_seen or event.at
        elif isinstance(event, Readings):
            await self._on_readings(event)

    async def _on_readings(self, scan: Readings) -> None:
        if self.context_tags:  # most controllers have none: skip a pass over every value
            for name, reading in scan.values.items():
                role = self.context_tags.get(name)
                if role is not None:
                    self.context[role] = reading.value
        self._latest.update(scan.values)
        back = self._track_unreadable(scan)
        changes = detect_changes(
            self._tags_in(scan), self.baseline.tags, scan.values, at=scan.at, unwatched=self._fresh
        )
        if back:
            changes = [_unwatched(c) if c.tag.name in back else c for c in changes]
        # A full scan looks at every member: two in a row that agree settle a recipe. A
        # subscription batch carries only what changed, so it settles by time, like a tick
        # (so does a scan that missed some tags: a member may be stale).
        whole = scan.complete and not scan.bad
        ripe = self._pending if whole else self._ripe(time.monotonic())
        recipes, pending = settle_recipes(
            self.config.recipes, self.baseline.tags, self._latest, ripe,
            at=scan.at, unwatched=self._fresh,
        )
        if changes or recipes:
            self.approvals.refresh()  # once per batch: the verdicts see the current records
        events = [self._change_event(c, scan.at, scan.actors) for c in [*changes, *recipes]]
        if self._fresh and scan.complete:
            events.extend(self._session_events(scan.at))
        events.extend(self._tag_gap_events(back, scan.at))
        adopted = self._recipe_members(recipes)  # journalled and adopted: the same readings
        if events:
            moved = {c.tag.name: scan.values[c.tag.name] for c in changes}
            moved.update(adopted)
            try:
                await self.sink(events, moved)
            except SpoolFull:
                # Not durable, so not detected: keep the baseline where it was, and the next
                # scan finds the same changes again (the spool logs and counts the refusal).
                return
        for name in back:
            del self.unreadable[name]
        self._set_pending(pending)
        self.baseline.tags = next_baseline(self.baseline.tags, scan.values, changes)
        self.baseline.tags.update(adopted)
        if scan.complete:
            self.baseline.last_seen = scan.at
            self.up = True
            if self._fresh:
                self._fresh, self._gap_start = False, None
                if self._session is not None:
                    self.baseline.session = self._session

    def _track_unreadable(self, scan: Readings) -> dict[str, tuple[datetime, str]]:
        """Note the tags that became unreadable (since the last complete scan); return those
        read again in this scan, with when their gap began and why (forgotten once the scan's
        events are durable)."""
        if scan.bad:
            start = self.baseline.last_seen or scan.at
            for name, reason in scan.bad.items():
                if name not in self.unreadable:
                    self.unreadable[name] = (start, reason)
        if not self.unreadable:
            return {}
        values = scan.values
        return {name: gap for name, gap in self.unreadable.items() if name in values}

    def _tag_gap_events(
        self, back: dict[str, tuple[datetime, str]], now: datetime
    ) -> list[SuspectChange]:
        events = []
        for name, (start, reason) in back.items():
            tag = self._watched.get(name)
            if tag is not None and now - start >= self._min_gap:
                events.append(self._tag_gap_event(tag, start, now, reason))
        return events

    def _tag_gap_event(
        self, tag: TagBase, start: datetime, end: datetime, reason: str
    ) -> SuspectChange:
        seconds = (end - start).total_seconds()
        metrics.CHANGES.labels(Verdict.UNAPPROVED.value, ChangeKind.MONITORING_GAP.value).inc()
        return self._event(
            tag=_tag_ref(tag),
            old=None,
            new=None,
            occurred_at=start,
            detected_at=end,
            kind=ChangeKind.MONITORING_GAP,
            verdict=Verdict.UNAPPROVED,
            reason=f"the agent could not read {self.config.id}/{tag.name} for {seconds:.0f} s "
            f"({reason}); a change in that time is compared with the baseline but cannot be "
            "timed",
            gap=MonitoringGap(start=start, end=end),
        )

    def _tags_in(self, scan: Readings) -> list[TagBase]:
        """The single tags to compare: all of them for a full scan, else those in the batch
        (a subscription's notification carries a few of 10,000 items)."""
        if scan.complete:
            return self._single_tags
        by_name = self._single_by_name
        return [by_name[name] for name in scan.values if name in by_name]

    async def tick(self, now: datetime) -> None:
        """Report recipes that settled without a new scan (subscriptions only send changes)."""
        if not self._pending or self._fresh:
            return
        ripe = self._ripe(time.monotonic())
        if not ripe:
            return
        recipes, pending = settle_recipes(
            self.config.recipes, self.baseline.tags, self._latest, ripe, at=now
        )
        if recipes:
            self.approvals.refresh()
            events = [self._change_event(c, now, {}) for c in recipes]
            adopted = self._recipe_members(recipes)
            try:
                await self.sink(events, adopted)
            except SpoolFull:
                return
            self.baseline.tags.update(adopted)
        self._set_pending(pending)

    def _ripe(self, now: float) -> dict[str, dict[str, Any]]:
        """The pending recipes unchanged for at least the settle time."""
        since, settle = self._pending_since, self._settle_s
        return {
            name: value for name, value in self._pending.items() if now - since[name] >= settle
        }

    def _set_pending(self, pending: dict[str, dict[str, Any]]) -> None:
        """Keep when each pending value was first seen; a value that moved starts again."""
        now, old = time.monotonic(), self._pending
        self._pending_since = {
            name: self._pending_since[name] if same_value(old.get(name), value) else now
            for name, value in pending.items()
        }
        self._pending = pending

    def _recipe_members(self, recipes: list[Change]) -> dict[str, Reading]:
        """The member readings a reported recipe moves the baseline to."""
        return {
            member: self._latest[member]
            for change in recipes
            for member in getattr(change.tag, "members", ())
            if member in self._latest
        }

    def _session_events(self, now: datetime) -> list[SuspectChange]:
        events = []
        gap_start = self._gap_start
        if gap_start is not None and now - gap_start >= self._min_gap:
            events.append(self._gap_event(gap_start, now))
        old, new = self.baseline.session, self._session
        if self.config.protocol == "opcua" and old and new and old != new:
            events.append(self._restart_event(old, new, now))
        start = gap_start or self.baseline.last_seen or now
        events += self._unresolved_events(start, now)
        return events

    def _unresolved_events(self, start: datetime, now: datetime) -> list[SuspectChange]:
        """A monitoring gap per watched tag that newly does not resolve (once per spell)."""
        events = []
        newly = [n for n in self._unresolved if n not in self._unresolved_reported]
        for tag in (t for t in self.config.tags if t.name in newly and t.kind is not None):
            events.append(self._unresolved_event(tag, self._unresolved[tag.name], start, now))
        self._unresolved_reported = set(self._unresolved)
        return events

    def _unresolved_event(
        self, tag: TagBase, reason: str, start: datetime, now: datetime
    ) -> SuspectChange:
        metrics.CHANGES.labels(Verdict.UNAPPROVED.value, ChangeKind.MONITORING_GAP.value).inc()
        ref = _tag_ref(tag)
        if any(tag.name in r.members and r.critical_to_quality for r in self.config.recipes):
            ref = ref.model_copy(update={"critical_to_quality": True})  # as its recipe
        return self._event(
            tag=ref, old=None, new=None, occurred_at=start, detected_at=now,
            kind=ChangeKind.MONITORING_GAP, verdict=Verdict.UNAPPROVED,
            reason=f"tag {tag.name} of {self.config.id} is not watched: {reason}; changes to it "
            "go unseen until its node resolves again",
            gap=MonitoringGap(start=start, end=now),
        )

    def _change_event(self, change: Change, at: datetime, actors: dict[str, str]) -> SuspectChange:
        result = self.approvals.decide(
            controller=self.config.id,
            tag=change.tag.name,
            change_kind=change.change_kind,
            new_value=change.new_value,
            occurred_at=change.occurred_at,
            refresh=False,
            tag_kind=change.tag.kind,
            old_value=change.old_value,
        )
        metrics.CHANGES.labels(result.verdict.value, change.change_kind.value).inc()
        return self._event(
            tag=_tag_ref(change.tag),
            old=change.old_value,
            new=change.new_value,
            occurred_at=change.occurred_at,
            detected_at=at,
            kind=change.change_kind,
            verdict=result.verdict,
            reason=result.reason,
            approval=result.approval,
            actor=_actor(change, actors),
        )

    def _gap_event(self, start: datetime, end: datetime) -> SuspectChange:
        seconds = (end - start).total_seconds()
        metrics.CHANGES.labels(Verdict.UNAPPROVED.value, ChangeKind.MONITORING_GAP.value).inc()
        return self._event(
            tag=TagRef(name=SESSION_TAG, address="", kind=TagKind.PROGRAM),
            old=None,
            new=None,
            occurred_at=start,
            detected_at=end,
            kind=ChangeKind.MONITORING_GAP,
            verdict=Verdict.UNAPPROVED,
            reason=f"the agent could not see {self.config.id} for {seconds:.0f} s; "
            "changes in that time are compared with the baseline but cannot be timed",
            gap=MonitoringGap(start=start, end=end),
        )

    def _restart_event(self, old: str, new: str, now: datetime) -> SuspectChange:
        metrics.CHANGES.labels(Verdict.UNAPPROVED.value, ChangeKind.PROGRAM_CHANGE.value).inc()
        return self._event(
            tag=TagRef(name=SESSION_TAG, address="ServerStatus.StartTime", kind=TagKind.PROGRAM),
            old=old,
            new=new,
            occurred_at=now,
            detected_at=now,
            kind=ChangeKind.PROGRAM_CHANGE,
            verdict=Verdict.UNAPPROVED,
            reason=f"the OPC UA server of {self.config.id} restarted (possible program download)",
        )

    def _event(self, *, tag: TagRef, old: TagValue, new: TagValue, occurred_at: datetime,
               detected_at: datetime, kind: ChangeKind, verdict: Verdict, reason: str,
               approval: object = None, actor: str | None = None,
               gap: MonitoringGap | None = None) -> SuspectChange:
        event = SuspectChange.model_validate({
            "event_id": str(uuid.uuid4()),
            "seq": 0,  # the spool assigns the persisted, monotonic seq
            "agent_id": self.identity.agent_id,
            "site": self.identity.site,
            "line": self.config.line,
            "controller": self.ref,
            "tag": tag,
            "old_value": old,
            "new_value": new,
            "occurred_at": occurred_at,
            "detected_at": detected_at,
            "change_kind": kind,
            "verdict": verdict,
            "verdict_reason": reason,
            "approval": approval,
            "context": dict(self.context),
            "actor": actor,
            "gap": gap,
        })
        return fit_event(event, self.limits)


def _tag_ref(tag: TagBase) -> TagRef:
    if isinstance(tag, RecipeTag):
        address = "recipe(" + ", ".join(tag.members) + ")"
    else:
        address = tag.event_address
    assert tag.kind is not None
    return TagRef(
        name=tag.name,
        address=str(address),
        kind=tag.kind,
        critical_to_quality=tag.critical_to_quality,
        unit=tag.unit,
    )


def _unwatched(change: Change) -> Change:
    """A change found on a tag's first good read after a gap: it happened unwatched."""
    return dataclasses.replace(change, change_kind=ChangeKind.CHANGED_WHILE_UNWATCHED)


def _actor(change: Change, actors: dict[str, str]) -> str | None:
    """Who made the change, where the protocol said (OPC UA audit events), per tag or member."""
    if not actors:
        return None
    if change.tag.name in actors:
        return actors[change.tag.name]
    if isinstance(change.tag, RecipeTag):  # not getattr: a miss on a model raises, slowly
        for member in change.tag.members:
            if member in actors:
                return actors[member]
    return None
