"""One controller's watcher: source events in, `SuspectChange` events out.

The watcher keeps the controller's baseline and connection state. For each scan it finds
the changes (`agent.detect`), asks change control for a verdict (`agent.approvals`), and
hands the finished events (`agent.reports`: context, snapshot, size limits) to the sink, which
makes them durable in the spool before the baseline moves on. After a (re)connect it also
reports what it could not see: the monitoring gap (from the last good read, notification or
keep-alive to the first complete scan after), values changed while unwatched, a restarted
server, and each watched tag whose node the session could not resolve (a monitoring gap on
that tag, reported once per spell). A restart and a gap that follow a program download get the
download's verdict (`agent.downloads`). The same holds for single tags the controller could
not give (``Readings.bad``, e.g. a Modbus exception for one request): once a tag is read
again, its monitoring gap (last good read to first good read after) is reported, and a change
found then is ``changed_while_unwatched``.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from agent.approvals import ApprovalBook
from agent.baseline import ControllerBaseline
from agent.config import ModbusControllerConfig, OpcuaControllerConfig, TagBase
from agent.contract import ChangeKind, SuspectChange, TagKind, TagValue
from agent.contract.limits import EventLimits
from agent.detect import Change, advance_baseline, detect_changes, same_value
from agent.downloads import SESSION_TAG, Downloads
from agent.recipes import settle_recipes
from agent.reports import AgentIdentity, ControllerReports
from agent.sources.base import Alive, Connected, Disconnected, Reading, Readings, SourceEvent
from agent.spool import SpoolFull

__all__ = ["SESSION_TAG", "AgentIdentity", "ControllerWatcher", "EventSink"]

#: (events, {tag: the reading its baseline moves to}) → durable, or raises `SpoolFull`.
EventSink = Callable[[list[SuspectChange], Mapping[str, Reading]], Awaitable[None]]
ControllerConfig = ModbusControllerConfig | OpcuaControllerConfig


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
        self.reports = ControllerReports(identity, config, approvals, self.limits)
        self.ref = self.reports.ref
        members = {m for r in config.recipes for m in r.members}
        #: Watched tags reported one by one; recipe members are reported as their recipe.
        self._single_tags: list[TagBase] = [
            t for t in config.tags if t.is_watched and t.name not in members
        ]
        self._single_by_name = {t.name: t for t in self._single_tags}
        #: Every watched tag by name (recipe members too): those a gap can be reported for.
        self._watched = {t.name: t for t in config.tags if t.is_watched}
        #: Tags the controller gives no value for: since when (their last good read), and why.
        self.unreadable: dict[str, tuple[datetime, str]] = {}
        #: The newest reading of each recipe member (what a recipe settles on). Only the
        #: members: the snapshot keeps every tag's newest reading already, and a dict of all
        #: of them here cost ~5 MB per 100,000 tags for nothing.
        self._members = tuple(sorted(members))
        self._latest: dict[str, Reading] = {
            m: baseline.tags[m] for m in self._members if m in baseline.tags
        }
        self.reports.note_values(baseline.tags)
        #: Recipes seen changed but not yet settled, and when each pending value was first seen.
        self._pending: dict[str, dict[str, Any]] = {}
        self._pending_since: dict[str, float] = {}
        #: A recipe settles by time (a tick, or a subscription batch that may not carry its
        #: members) only once this long passed without it changing: a member written a moment
        #: after another is then surely in (two looks: sampling plus publishing, or a poll).
        self._settle_s = 2 * config.look_interval_s
        self.up = False
        # A gap is reported once the controller is seen again; on start it runs from the
        # last good read the previous agent run saw.
        self._gap_start: datetime | None = baseline.last_seen
        self._fresh = True
        self._session: str | None = None
        self._min_gap = timedelta(seconds=config.monitoring_gap_min_s)
        #: Tags the current session cannot watch (with why), and those already reported.
        self._unresolved: dict[str, str] = {}
        self._unresolved_reported: set[str] = set()
        self._downloads = Downloads(config.download_restart_s)

    @property
    def context(self) -> dict[str, TagValue]:
        """The context every event carries now (context roles and measurements)."""
        return self.reports.context

    async def on_event(self, event: SourceEvent) -> None:
        if isinstance(event, Readings):
            await self._on_readings(event)
        elif isinstance(event, Alive):
            self._heard(event.at)
        elif isinstance(event, Connected):
            self._fresh, self._session = True, event.session
            self._unresolved = event.unresolved
        elif isinstance(event, Disconnected):
            self.up = False
            self._fresh = True
            if self._gap_start is None:
                # From the last good read, notification or keep-alive: not the session's
                # full read (a quiet subscription reads nothing else for hours).
                self._gap_start = self.baseline.last_seen or event.at
            self._downloads.session_lost(event.at)

    def _heard(self, at: datetime) -> None:
        """The controller answered at ``at`` (a partial batch or a keep-alive): the last
        moment it was watched, where a gap would start. Only within a watched session: a
        gap already open ends at the first complete scan, not before."""
        last = self.baseline.last_seen
        if not self._fresh and (last is None or at > last):
            self.baseline.last_seen = at

    async def _on_readings(self, scan: Readings) -> None:
        self.reports.note_context(scan.values)
        self._note_members(scan.values)
        self.reports.note_values(scan.values)
        back = self._track_unreadable(scan)
        still = _stands_still(scan.values, self.baseline.tags)
        changes = [] if still else detect_changes(
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
        self.reports.open_batch(self._missing())
        found = [self.reports.change(c, scan.at, scan.actors)
                 for c in _downloads_first([*changes, *recipes])]
        events = list(found)
        reconnect = self._fresh and scan.complete
        cause = self._downloads.cause(found) if reconnect else None
        if reconnect:
            events.extend(self._session_events(cause, scan.at))
        events.extend(self._tag_gap_events(back, scan.at))
        adopted = self._recipe_members(recipes)  # journalled and adopted: the same readings
        if events:
            events = self.reports.finish(events, self._missing())
            moved = {c.tag.name: scan.values[c.tag.name] for c in changes}
            moved.update(adopted)
            try:
                await self.sink(events, moved)
            except SpoolFull:
                # Not durable, so not detected: keep the baseline where it was, and the next
                # scan finds the same changes again (the spool logs and counts the refusal).
                return
        if reconnect:
            self._downloads.reconnected(found, cause)
        else:
            self._downloads.seen(found)
        for name in back:
            del self.unreadable[name]
        self._set_pending(pending)
        if not still:  # else the baseline holds every one of these readings already
            advance_baseline(self.baseline.tags, scan.values, changes)
        self.baseline.tags.update(adopted)
        if scan.complete:
            self.baseline.last_seen = scan.at
            self.up = True
            if self._fresh:
                self._fresh, self._gap_start = False, None
                if self._session is not None:
                    self.baseline.session = self._session
        elif scan.values:
            self._heard(scan.at)

    def _missing(self) -> set[str]:
        """Tags without a value now: unreadable, or not resolved in this session."""
        return {*self.unreadable, *self._unresolved}

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
                events.append(self.reports.tag_gap(tag, start, now, reason))
        return events

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
            self.reports.open_batch(self._missing())
            events = [self.reports.change(c, now, {}) for c in recipes]
            events = self.reports.finish(events, self._missing())
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

    def _note_members(self, values: Mapping[str, Reading]) -> None:
        latest = self._latest
        for member in self._members:
            reading = values.get(member)
            if reading is not None:
                latest[member] = reading

    def _recipe_members(self, recipes: list[Change]) -> dict[str, Reading]:
        """The member readings a reported recipe moves the baseline to."""
        return {
            member: self._latest[member]
            for change in recipes
            for member in getattr(change.tag, "members", ())
            if member in self._latest
        }

    def _session_events(
        self, cause: SuspectChange | None, now: datetime
    ) -> list[SuspectChange]:
        """The gap, the restart and the unresolved tags of a reconnect; ``cause``: the
        program download that explains the gap and the restart (`agent.downloads`)."""
        events = []
        gap_start = self._gap_start
        if gap_start is not None and now - gap_start >= self._min_gap:
            events.append(self.reports.gap(gap_start, now, cause))
        old, new = self.baseline.session, self._session
        if self.config.protocol == "opcua" and old and new and old != new:
            events.append(self.reports.restart(old, new, now, cause))
        start = gap_start or self.baseline.last_seen or now
        events += self._unresolved_events(start, now)
        return events

    def _unresolved_events(self, start: datetime, now: datetime) -> list[SuspectChange]:
        """A monitoring gap per watched tag that newly does not resolve (once per spell)."""
        events = []
        newly = [n for n in self._unresolved if n not in self._unresolved_reported]
        for tag in (t for t in self.config.tags if t.name in newly and t.is_watched):
            events.append(self.reports.unresolved(tag, self._unresolved[tag.name], start, now))
        self._unresolved_reported = set(self._unresolved)
        return events


def _downloads_first(changes: list[Change]) -> list[Change]:
    """A program download first: it explains what comes with it (and titles the incident)."""
    if not any(c.tag.kind is TagKind.PROGRAM for c in changes):
        return changes
    return sorted(changes, key=lambda c: c.tag.kind is not TagKind.PROGRAM)


def _unwatched(change: Change) -> Change:
    """A change found on a tag's first good read after a gap: it happened unwatched."""
    return change._replace(change_kind=ChangeKind.CHANGED_WHILE_UNWATCHED)


def _stands_still(readings: Mapping[str, Reading], baseline: Mapping[str, Reading]) -> bool:
    """True when every reading is the very object the baseline holds (a scan in which nothing
    moved: sources hand back the same `Reading` while a value stands still). `detect_changes`
    would skip each such tag and `advance_baseline` keep it; this asks once for all, in C."""
    return all(map(operator.is_, readings.values(), map(baseline.get, readings)))
