"""The `SuspectChange` events of one controller: what each kind says, and what all carry.

Every event carries the controller's ``context``: the values of its context tags under their
roles (lot, batch, recipe, operator) and of its measurement tags under their names (an actual
temperature: read, never a change). Every suspect event (any verdict but ``authorized``)
carries the evidence snapshot: the controller's watched and measured values at detection,
after the change, with the SHA-256 over all of them (`agent.contract.limits.take_snapshot`),
the configuration snapshot investigators preserve. It is taken once per batch of events (one
scan or notification batch), not per event. A snapshot of up to `SHARED_SNAPSHOT_VALUES`
values goes whole into every suspect event. A larger one (thousands of tags) goes whole into
the batch's first suspect event at most once every `LARGE_SNAPSHOT_EVERY_S` per controller;
the other suspect events carry the hash of the values at their own detection, with
``snapshot.values`` named in ``omitted`` (a storm of changes on a 10,000-tag controller would
otherwise publish megabytes a second, and spend a core on it). Every event is fitted within the
agent's size limits (`agent.contract.limits.fit_event`) last.

Example::

    reports = ControllerReports(identity, config, approvals, limits)
    reports.note_context(scan.values)
    events = reports.finish([reports.change(c, at, actors) for c in changes], latest, set())
"""

from __future__ import annotations

import operator
import os
import time
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from agent import metrics
from agent.approvals import ApprovalBook
from agent.config import ModbusControllerConfig, OpcuaControllerConfig, TagBase
from agent.contract import (
    ApprovalConsidered,
    ChangeKind,
    ControllerRef,
    MonitoringGap,
    Protocol,
    Snapshot,
    SuspectChange,
    TagKind,
    TagRef,
    TagValue,
    Verdict,
)
from agent.contract.encode import known_json
from agent.contract.events import SCHEMA, built_event, built_tag_ref
from agent.contract.limits import EventLimits, fit_event, limit_mapping
from agent.contract.values import decode_mapping, decode_value
from agent.detect import Change
from agent.downloads import SESSION_TAG, covered_by, download_reason
from agent.recipes import RecipeTag
from agent.snapshot_digest import SnapshotDigest
from agent.sources.base import Reading

ControllerConfig = ModbusControllerConfig | OpcuaControllerConfig

#: Members read per event, looked up once (an enum member is a lookup on its class).
_AUTHORIZED = Verdict.AUTHORIZED
_PROGRAM = TagKind.PROGRAM
_VERDICT_AND_KIND = operator.attrgetter("verdict", "change_kind")
#: A snapshot of up to this many values goes whole into every suspect event of its batch.
SHARED_SNAPSHOT_VALUES = 256
#: A larger one goes whole into at most one event this often (per controller, monotonic s).
LARGE_SNAPSHOT_EVERY_S = 1.0


@dataclass(frozen=True)
class AgentIdentity:
    agent_id: str
    site: str


@dataclass
class _Batch:
    """The snapshot of one batch of events, taken at its first suspect event."""

    missing: Collection[str]
    whole: Snapshot | None = None
    reference: Snapshot | None = None
    shared: bool = False
    suspects: int = 0


def seconds_text(seconds: float) -> str:
    """A duration as a reason says it: tenths below ten seconds (0.6 s is not "1 s")."""
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


class ControllerReports:
    """Builds the events of one controller (see the module docstring)."""

    def __init__(self, identity: AgentIdentity, config: ControllerConfig,
                 approvals: ApprovalBook, limits: EventLimits) -> None:
        self.identity = identity
        self.config = config
        self.approvals = approvals
        self.limits = limits
        self.ref = ControllerRef(id=config.id, protocol=Protocol(config.protocol),
                                 endpoint=config.endpoint, validated=config.validated)
        #: The context every event carries, kept current from the readings.
        self.context: dict[str, TagValue] = {}
        keys: dict[str, list[str]] = {}
        for tag in config.tags:
            if tag.context is not None:
                keys.setdefault(tag.name, []).append(tag.context)
            if tag.is_measurement:
                keys.setdefault(tag.name, []).append(tag.name)
        self._context_keys = {name: tuple(k) for name, k in keys.items()}
        #: The values of the tags that make the snapshot (watched and measured ones), kept
        #: current by `note_values`, with their hash.
        self.snapshot = SnapshotDigest(t.name for t in config.tags if t.kind is not None)
        #: Each tag's reference in its events, built once.
        self._tag_refs: dict[str, TagRef] = {}
        #: When a large snapshot last went whole into an event (monotonic s).
        self._large_sent: float | None = None
        #: The batch being built (`open_batch` to `finish`).
        self._batch: _Batch | None = None

    def note_context(self, values: Mapping[str, Reading]) -> None:
        """Take the context tags' and measurements' values from a scan or batch."""
        keys = self._context_keys
        if not keys:  # most controllers have none: skip a pass over every value
            return
        if len(values) < len(keys):
            items = [(n, values[n]) for n in values if n in keys]
        else:
            items = [(n, values[n]) for n in keys if n in values]
        for name, reading in items:
            for key in keys[name]:
                self.context[key] = reading.value

    def note_values(self, values: Mapping[str, Reading]) -> None:
        """Take the newest readings (a scan, a batch, the baseline at start) for the snapshot."""
        self.snapshot.update(values)

    def open_batch(self, missing: Collection[str]) -> None:
        """The events built from now until `finish` are one batch (one scan or notification
        batch): each suspect one is built with the snapshot as it is now, the values of every
        tag but ``missing`` (tags the agent cannot read now: their last value is not their
        value at detection), so no event is copied to add it."""
        self._batch = _Batch(missing)

    def finish(self, events: list[SuspectChange],
               missing: Collection[str]) -> list[SuspectChange]:
        """The batch's events with the snapshot in the suspect ones, counted and fitted.

        The snapshot holds each tag's newest reading (`note_values`) but for ``missing``. A
        suspect event built outside `open_batch` is given it here (a copy).
        """
        batch, self._batch = self._batch or _Batch(missing), None
        for i, event in enumerate(events):
            if event.snapshot is None and event.verdict is not _AUTHORIZED:
                snapshot, omitted = self._snapshot_for(batch)
                events[i] = event.model_copy(update={"snapshot": snapshot, "omitted": omitted})
        for (verdict, kind), count in Counter(map(_VERDICT_AND_KIND, events)).items():
            metrics.CHANGES.labels(verdict.value, kind.value).inc(count)
        # Every snapshot here was built within the limits (`_whole_snapshot`).
        return [fit_event(e, self.limits, snapshot_limited=True) for e in events]

    def _snapshot_for(self, batch: _Batch) -> tuple[Snapshot, list[str] | None]:
        """The next suspect event's snapshot in ``batch`` and what it leaves out: the values
        in the first (all, when the snapshot is small), the hash alone in the others."""
        if batch.reference is None:
            sha256 = self.snapshot.sha256(batch.missing)  # on from the first change
            batch.whole = self._whole_snapshot(batch.missing, sha256)
            batch.reference = Snapshot.model_construct(values={}, sha256=sha256)
            batch.shared = len(self.snapshot) <= SHARED_SNAPSHOT_VALUES
        carry = batch.whole is not None and (batch.suspects == 0 or batch.shared)
        batch.suspects += 1
        if carry:
            assert batch.whole is not None
            return batch.whole, None
        return batch.reference, ["snapshot.values"]

    def _whole_snapshot(self, missing: Collection[str], sha256: str) -> Snapshot | None:
        """The snapshot with its values, unless it is large and one went out just now. The
        values' canonical JSON (`SnapshotDigest.encoded`) is written as it is when no value
        had to be truncated."""
        if len(self.snapshot) > SHARED_SNAPSHOT_VALUES:
            now = time.monotonic()
            if self._large_sent is not None and now - self._large_sent < LARGE_SNAPSHOT_EVERY_S:
                return None
            self._large_sent = now
        encoded = self.snapshot.encoded(missing)
        values = self.snapshot.values(missing)  # a copy: the snapshot's own
        if self.snapshot.numbers_only():  # nothing to limit (most controllers)
            limited = values
        else:
            limited = limit_mapping(values, self.limits)
        if encoded is not None and (
            limited is values or all(map(operator.is_, limited.values(), values.values()))
        ):
            known_json(limited, encoded)
        # Built from values that passed the source's decoding: limited, not validated again.
        return Snapshot.model_construct(values=limited, sha256=sha256)

    def change(self, change: Change, at: datetime, actors: dict[str, str]) -> SuspectChange:
        """A change of a watched tag or recipe, with its verdict against change control."""
        result = self.approvals.decide(
            controller=self.config.id, tag=change.tag.name, change_kind=change.change_kind,
            new_value=change.new_value, occurred_at=change.occurred_at, refresh=False,
            tag_kind=change.tag.kind, old_value=change.old_value,
        )
        actor = _actor(change, actors) if actors else None
        reason = result.reason
        if change.tag.kind is _PROGRAM:
            reason = download_reason(self.config.id, change.tag.name, change.old_value,
                                     change.new_value, actor, reason)
        return self._event(
            tag=self.tag_ref(change.tag), old=change.old_value, new=change.new_value,
            occurred_at=change.occurred_at, detected_at=at, kind=change.change_kind,
            verdict=result.verdict, reason=reason, approval=result.approval, actor=actor,
        )

    def gap(self, start: datetime, end: datetime, cause: SuspectChange | None) -> SuspectChange:
        """The controller was not seen from ``start`` (the last good read or notification) to
        ``end`` (the first one after); ``cause``: the program download it belongs to."""
        seconds = (end - start).total_seconds()
        what = (f"the agent could not see {self.config.id} for {seconds_text(seconds)}; changes "
                "in that time are compared with the baseline but cannot be timed")
        verdict, approval, reason = covered_by(cause, what)
        return self._event(
            tag=TagRef(name=SESSION_TAG, address="", kind=TagKind.PROGRAM), old=None, new=None,
            occurred_at=start, detected_at=end, kind=ChangeKind.MONITORING_GAP,
            verdict=verdict, reason=reason, approval=approval,
            gap=MonitoringGap(start=start, end=end),
        )

    def restart(self, old: str, new: str, now: datetime,
                cause: SuspectChange | None) -> SuspectChange:
        """The OPC UA server restarted (its start time changed) between two sessions."""
        what = f"the OPC UA server of {self.config.id} restarted"
        if cause is None:
            what += " (possible program download)"
        verdict, approval, reason = covered_by(cause, what)
        return self._event(
            tag=TagRef(name=SESSION_TAG, address="ServerStatus.StartTime", kind=TagKind.PROGRAM),
            old=old, new=new, occurred_at=now, detected_at=now, kind=ChangeKind.PROGRAM_CHANGE,
            verdict=verdict, reason=reason, approval=approval,
        )

    def tag_gap(self, tag: TagBase, start: datetime, end: datetime,
                reason: str) -> SuspectChange:
        """One tag the controller could not give, from its last good read to the next."""
        seconds = (end - start).total_seconds()
        return self._event(
            tag=tag_ref(tag), old=None, new=None, occurred_at=start, detected_at=end,
            kind=ChangeKind.MONITORING_GAP, verdict=Verdict.UNAPPROVED,
            reason=f"the agent could not read {self.config.id}/{tag.name} for "
            f"{seconds_text(seconds)} ({reason}); a change in that time is compared with the "
            "baseline but cannot be timed",
            gap=MonitoringGap(start=start, end=end),
        )

    def unresolved(self, tag: TagBase, reason: str, start: datetime,
                   now: datetime) -> SuspectChange:
        """A watched tag whose node the session cannot resolve (once per spell)."""
        ref = tag_ref(tag)
        if any(tag.name in r.members and r.critical_to_quality for r in self.config.recipes):
            ref = ref.model_copy(update={"critical_to_quality": True})  # as its recipe
        return self._event(
            tag=ref, old=None, new=None, occurred_at=start, detected_at=now,
            kind=ChangeKind.MONITORING_GAP, verdict=Verdict.UNAPPROVED,
            reason=f"tag {tag.name} of {self.config.id} is not watched: {reason}; changes to it "
            "go unseen until its node resolves again",
            gap=MonitoringGap(start=start, end=now),
        )

    def _event(self, *, tag: TagRef, old: TagValue, new: TagValue, occurred_at: datetime,
               detected_at: datetime, kind: ChangeKind, verdict: Verdict, reason: str,
               approval: ApprovalConsidered | None = None, actor: str | None = None,
               gap: MonitoringGap | None = None) -> SuspectChange:
        # The nested parts are models already (controller and tag built once), the values
        # are decoded here as the model's validator would: the event is not validated again
        # (`built_event`; pydantic's validation was half the cost of building it).
        snapshot: Snapshot | None = None
        omitted: list[str] | None = None
        if self._batch is not None and verdict is not _AUTHORIZED:
            snapshot, omitted = self._snapshot_for(self._batch)
        return built_event({
            "schema_": SCHEMA,
            "event_id": new_event_id(),
            "seq": 0,  # the spool assigns the persisted, monotonic seq
            "agent_id": self.identity.agent_id,
            "site": self.identity.site,
            "line": self.config.line,
            "controller": self.ref,
            "tag": tag,
            "old_value": old if type(old) is float else decode_value(old),
            "new_value": new if type(new) is float else decode_value(new),
            "occurred_at": occurred_at,
            "detected_at": detected_at,
            "change_kind": kind,
            "verdict": verdict,
            "verdict_reason": reason,
            "approval": approval,
            "context": decode_mapping(self.context) if self.context else {},
            "actor": actor,
            "gap": gap,
            "snapshot": snapshot,
            "omitted": omitted,
            "signature": None,
        })

    def tag_ref(self, tag: TagBase) -> TagRef:
        """The tag's reference in its events (built once per tag)."""
        ref = self._tag_refs.get(tag.name)
        if ref is None or ref.kind is not tag.kind:
            ref = self._tag_refs[tag.name] = tag_ref(tag)
        return ref


def new_event_id() -> str:
    """A time-ordered (version 7, RFC 9562) UUID: the first 48 bits are the Unix time in ms,
    the other 74 free bits are random.

    Why version 7: the classifier keeps every event id it has recorded (``processed_events``,
    its exactly-once check) in a B-tree keyed by the id. Random (version 4) ids land on a
    random page each, so once that table outgrows a batch every insert dirtied a page of its
    own and each commit rewrote about one page per event: the store's cost per event doubled
    between 20,000 and 100,000 stored events. Ids that grow with time are appended near the
    end of the tree. Uniqueness still rests on the random bits (74 per millisecond); the time
    is the detection's own, already in the event. The random bytes of `_ID_POOL` ids are read
    and written at once (a system call per event cost as much as the rest), the time part once
    per millisecond."""
    global _stamp
    if not _random_ids:
        _random_ids.extend(_random_tails(_ID_POOL))
    ms = time.time_ns() // 1_000_000
    if ms != _stamp[0]:  # the time part is written once per millisecond
        text = f"{ms:012x}"
        _stamp = (ms, f"{text[:8]}-{text[8:]}-7")
    return _stamp[1] + _random_ids.pop()


def _random_tails(count: int) -> list[str]:
    """The random parts of ``count`` ids, as written after the version digit: the variant
    bits set (RFC 9562: the two top bits of byte 8 are 10) and the dashes in place.

    Eleven random bytes per id, written as 22 hex digits, all ids at once: the dashes, the
    variant digit (`_VARIANT`: its value's two low bits kept) and a space after each id are
    set by slice assignments, and one split gives the ids (18 random digits and 2 random
    bits each: 74 bits, as before). No Python step per id: a fifth of the CPU of cutting
    each id out of the hex and formatting it (0.06 against 0.3 µs an id)."""
    text = bytearray(os.urandom(11 * count).hex(), "ascii")
    text[3::22] = text[8::22] = b"-" * count
    text[4::22] = text[4::22].translate(_VARIANT)
    text[21::22] = b" " * count
    return text.decode().split()


#: A hex digit to 8, 9, a or b (binary 10xx), its value's two low bits kept.
_VARIANT = bytes.maketrans(b"0123456789abcdef", b"89ab89ab89ab89ab")
_ID_POOL = 256
#: The random parts (`_random_tails`) of ids not yet given out; a forked child starts without
#: them, so no two processes give the same id.
_random_ids: list[str] = []
os.register_at_fork(after_in_child=_random_ids.clear)
#: The millisecond of the last id, and its time part (with the version digit) as written.
_stamp: tuple[int, str] = (-1, "")


def tag_ref(tag: TagBase) -> TagRef:
    if isinstance(tag, RecipeTag):
        address = "recipe(" + ", ".join(tag.members) + ")"
    else:
        address = tag.event_address
    assert tag.kind is not None
    # The parts of a validated config tag: not validated again.
    return built_tag_ref(tag.name, str(address), tag.kind, tag.critical_to_quality, tag.unit)


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
