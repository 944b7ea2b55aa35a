"""Which events are one incident: the incident key, and bursts across controllers.

**The incident key** (`incident_key`) is ``<site>/<controller>``: the suspect changes of one
controller are one incident while its master record is open and each arrives within the
correlation window of the record's last event (``criteria.correlation.window_s``, 900 s by
default, detection times; the records store applies it). Every tag of the controller shares the
key: a second setpoint changed on the same press is evidence for the same record, not a new
one. The classifier puts the key on every `Classification` (``correlation_key``); the records
store opens or finds the record by it. It is defined here, once, for the criteria, the burst
correlation and the records store alike. (The classifier's own integrity findings use
``integrity:<agent>``, see `detectors.integrity`.)

**A burst** is suspect changes on ``min_controllers`` distinct controllers of one line within
``window_s`` seconds (detection time, `BurstSettings`) of the first of them. Its events are one
incident, so they carry one key: the incident key of the burst's first event, which is the key
that event's record was opened under. That makes the first event and the later ones land on one
master record without the store having to merge records.

The events of the *other* controllers that arrive before the burst is recognised (the second
up to the ``min_controllers - 1``-th controller) cannot be recorded under their own key, or
they would open records of their own. They are held back until the burst is recognised, or
until ``window_s`` has passed without it; then they are released with their own key. The
service leaves a held event's Kafka offset uncommitted, so a crash loses nothing: the replay
rebuilds this state from the redelivered events.

**Several classifier processes** (one consumer group, the partitions spread across them) each
see only the controllers of their partitions, so no process alone can know the first event of
a line's burst. Then (``shared``: the process does not own every partition of the topic) the
first controller's events are held too, and every event of a recognised burst also carries the
line's key (`line_key`, ``burst:<site>/<line>``). The records store claims that key for the
burst's record inside its transaction (`detectors.records.ingest`), so the processes attach
their parts of one burst to one record; and an event released at the end of its hold without
a burst of its own joins the line's burst record when it was detected within ``window_s`` of
that record's last event (the other process saw the burst this one could not).

`BurstCorrelator` is plain state, generic over a token (the service passes a partition and
offset) and driven with explicit times: it never reads a clock.

**Events of one instant** come together (the changes one poll found): `per_instant` answers a
question about an event's time (off hours, the alert's time text) once per run of one instant.

Example::

    >>> bursts = BurstCorrelator(BurstSettings(window_s=10, min_controllers=3))
    >>> released = bursts.offer(event, token, now=now)    # [(event, context, token), ...]
    >>> released += bursts.due(now=now)                    # holds that timed out
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from agent.contract import SuspectChange, Verdict

T = TypeVar("T")
R = TypeVar("R")


def per_instant(answer: Callable[[datetime, tzinfo | None, int], R]) -> Callable[[datetime], R]:
    """``answer(moment, moment.tzinfo, moment.fold)``, given again without a call while the
    instants asked are one after the other the same: the events of one poll share their
    times, and arrive together. ``answer`` is a cache per instant itself (`functools.lru_cache`
    keyed by the instant, its zone and fold), but hashing a parsed instant the first time costs
    more than the lookup (its zone's ``utcoffset`` makes a `timedelta`), and each event brings
    its own instant object; comparing it with the last one, in the same zone object, reads
    its fields only. The zone object and the fold must be the last one's too: that is the
    key ``answer`` was asked with (equal instants of other zones may differ in text, and equal
    wall times of one zone an hour apart differ in ``fold``)."""
    last: tuple[datetime | None, tzinfo | None, int, R | None] = (None, None, 0, None)

    def of(moment: datetime) -> R:
        nonlocal last
        zone, fold = moment.tzinfo, moment.fold
        last_moment, last_zone, last_fold, value = last  # (one read: another thread may set it)
        if zone is last_zone and fold == last_fold and moment == last_moment:
            return value  # type: ignore[return-value]
        value = answer(moment, zone, fold)
        last = (moment, zone, fold, value)
        return value

    return of


class IntegrityKind(StrEnum):
    """Findings the classifier makes itself from the agents' own data."""

    SEQ_GAP = "seq_gap"
    AGENT_SILENCE = "agent_silence"
    #: An event no trusted agent signed (`detectors.signatures`).
    FORGED_EVENT = "forged_event"


@dataclass(frozen=True)
class EventContext:
    """What the state around an event says about it; `classify` reads it, never changes it."""

    burst_controllers: int = 0
    #: Set when the event is part of a burst (or an integrity finding): its correlation key.
    correlation_key: str | None = None
    #: Set when the event is part of a burst: its line's key (`line_key`).
    line_key: str | None = None
    integrity: IntegrityKind | None = None

    @property
    def in_burst(self) -> bool:
        return self.burst_controllers > 0


NO_CONTEXT = EventContext()
#: (a module constant: an enum member looked up on its class is a slow descriptor per event)
_AUTHORIZED = Verdict.AUTHORIZED


class BurstSettings(BaseModel):
    """When changes on several controllers of one line count as one burst."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Changes on this many distinct controllers of one line make a burst ...
    min_controllers: int = Field(default=3, ge=2)
    #: ... when they are detected within this many seconds of the first of them.
    window_s: float = Field(default=10.0, gt=0)


def incident_key(event: SuspectChange) -> str:
    """``<site>/<controller>``: the key of the incident an event belongs to (see the module
    docstring for the window that bounds it)."""
    return f"{event.site}/{event.controller.id}"


def line_key(event: SuspectChange) -> str:
    """``burst:<site>/<line>``: the key a burst's record is claimed under in the records
    store, whichever classifier process saw which of its controllers."""
    return f"burst:{event.site}/{event.line}"


@dataclass
class _Episode(Generic[T]):
    started: datetime  # detection time of the first event
    opened_at: datetime  # processing time, for releasing holds
    key: str
    first_controller: str
    line: tuple[str, str]
    controllers: set[str] = field(default_factory=set)
    held: list[tuple[SuspectChange, T]] = field(default_factory=list)
    is_burst: bool = False
    #: The last context given out; shared by the events that see the same controller count.
    context: EventContext | None = None


Released = tuple[SuspectChange, EventContext, T]


class BurstCorrelator(Generic[T]):
    """Per line: the current episode of suspect changes, and the events held while it decides."""

    def __init__(self, settings: BurstSettings) -> None:
        self.settings = settings
        #: The settings' window as a timedelta, made once (``timedelta()`` costs more than
        #: the rest of an event's window check; the settings are frozen).
        self._window = timedelta(seconds=settings.window_s)
        self._episodes: dict[tuple[str, str], _Episode[T]] = {}
        #: True while other processes share the partitions: hold the first controller too.
        self.shared = False

    def offer(self, event: SuspectChange, token: T, *, now: datetime) -> list[Released[T]]:
        """Take one event; return the events that may be classified now (this one or held)."""
        if event.verdict is _AUTHORIZED:
            return [(event, NO_CONTEXT, token)]
        line = (event.site, event.line)
        released: list[Released[T]] = []
        episode = self._episodes.get(line)
        if episode is None or abs(event.detected_at - episode.started) > self._window:
            if episode is not None:
                released = self._end(line, episode)
            episode = _Episode(
                event.detected_at, now, incident_key(event), event.controller.id, line
            )
            self._episodes[line] = episode
        controller = event.controller.id
        controllers = episode.controllers
        controllers.add(controller)
        if episode.is_burst:  # (most events of a burst: its context is the one given last)
            context = episode.context
            if context is None or context.burst_controllers != len(controllers):
                context = self._context(episode)
            released.append((event, context, token))
            return released
        if len(controllers) >= self.settings.min_controllers:
            episode.is_burst = True
            ctx = self._context(episode)
            held, episode.held = episode.held, []
            return [*released, *((ev, ctx, tok) for ev, tok in held), (event, ctx, token)]
        if controller == episode.first_controller and not self.shared:
            released.append((event, NO_CONTEXT, token))
            return released
        episode.held.append((event, token))
        return released

    def due(self, *, now: datetime) -> list[Released[T]]:
        """Release the holds of episodes older than the window (processing time)."""
        window = self._window
        released: list[Released[T]] = []
        for line, episode in list(self._episodes.items()):
            if now - episode.opened_at > window:
                released += self._end(line, episode)
        return released

    def held_tokens(self) -> list[T]:
        return [tok for ep in self._episodes.values() for _, tok in ep.held]

    def drop(self, unwanted: Callable[[T], bool]) -> None:
        """Forget held events (their partition was revoked: the new owner reads them again)."""
        for episode in self._episodes.values():
            episode.held = [(ev, tok) for ev, tok in episode.held if not unwanted(tok)]

    def _end(self, line: tuple[str, str], episode: _Episode[T]) -> list[Released[T]]:
        del self._episodes[line]
        ctx = self._context(episode) if episode.is_burst else NO_CONTEXT
        return [(ev, ctx, tok) for ev, tok in episode.held]

    def _context(self, episode: _Episode[T]) -> EventContext:
        """The burst's context; built again only when its controller count changed (every
        event of a burst gets one: it is frozen, so one object serves them all)."""
        count = len(episode.controllers)
        if episode.context is None or episode.context.burst_controllers != count:
            episode.context = EventContext(
                burst_controllers=count, correlation_key=episode.key,
                line_key=f"burst:{episode.line[0]}/{episode.line[1]}",
            )
        return episode.context
