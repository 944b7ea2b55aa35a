"""Data-integrity findings from the agents' own data: gaps in ``seq`` and silent agents.

Both trackers are plain state fed with what the classifier reads (events of both change
topics, heartbeats) and asked, on a timer, for findings at an explicit ``now``. A finding is a
synthetic `SuspectChange` (``change_kind=monitoring_gap``) with a deterministic ``event_id``, so
it is recorded, deduplicated and correlated like any other event: two classifier processes
that both notice the same silence write one record.

- **seq gap**: every event an agent spools gets the next ``seq`` (suspect and authorized alike).
  Events of different controllers travel in different partitions, so ``seq`` arrives out of
  order; a missing ``seq`` becomes a finding only when the agent's latest heartbeat says its
  spool is empty (so everything up to ``last_seq`` was acknowledged by the broker), the reader
  is caught up, and the ``seq`` has been missing for ``grace_s``. The lowest ``seq`` read from
  an agent until the reader first catches up is its baseline: what came before is not judged.
  (Not the first one read: partitions are read in no set order, and a later ``seq`` read first
  would hide every gap below it.) That baseline is sound only if what the reader counts of an
  agent is every ``seq`` above some ``seq``: the reader starts at one cut in the agents' time
  (`detectors.integrity_cut`), not at each partition's end, which skipped a higher ``seq``
  written to one partition before the start and read a lower one written to another after it.
- **agent silence**: a heartbeat that stops for ``silence_after_s`` while its last heartbeat
  said controllers were up. One finding per last heartbeat (``silence:<agent>:<sent_at>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agent.contract import (
    ChangeKind,
    ControllerRef,
    Heartbeat,
    MonitoringGap,
    Protocol,
    SuspectChange,
    TagKind,
    TagRef,
    Verdict,
)
from detectors.correlate import EventContext, IntegrityKind


@dataclass
class _AgentSeen:
    """What the classifier knows of one agent: where it runs, its seqs and its heartbeat."""

    site: str = "unknown"
    line: str = "unknown"
    protocol: Protocol = Protocol.OPCUA
    validated: bool = False
    contiguous: int | None = None  # every seq up to this one has been seen (None: no baseline)
    above: set[int] = field(default_factory=set)
    missing_since: datetime | None = None
    beat: Heartbeat | None = None
    reported_silence: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Finding:
    event: SuspectChange
    context: EventContext


class AgentWatch:
    """Seq and heartbeat state of every agent; `findings(now)` returns what is due."""

    def __init__(self, *, silence_after_s: float, grace_s: float) -> None:
        self.silence_after = timedelta(seconds=silence_after_s)
        self.grace = timedelta(seconds=grace_s)
        self._agents: dict[str, _AgentSeen] = {}

    def _agent(self, agent_id: str) -> _AgentSeen:
        seen = self._agents.get(agent_id)
        if seen is None:  # (not setdefault: it would build an _AgentSeen for every event)
            seen = self._agents[agent_id] = _AgentSeen()
        return seen

    def saw_event(self, event: SuspectChange, *, now: datetime) -> None:
        seen = self._agent(event.agent_id)
        seen.site, seen.line = event.site, event.line
        seen.protocol = event.controller.protocol
        seen.validated = seen.validated or event.controller.validated
        _add_seq(seen, event.seq, now)

    def saw_heartbeat(self, beat: Heartbeat) -> None:
        seen = self._agent(beat.agent_id)
        if seen.beat is None or _sent(beat) >= _sent(seen.beat):
            seen.beat = beat
        if beat.site and seen.site == "unknown":
            seen.site = beat.site

    def findings(self, *, now: datetime, caught_up: bool) -> list[Finding]:
        """Due findings; ``caught_up`` says the reader has read everything the broker holds."""
        if not caught_up:
            return []
        found: list[Finding] = []
        for agent_id, seen in self._agents.items():
            if seen.contiguous is None and seen.above:
                _set_baseline(seen)
            found += self._gap(agent_id, seen, now)
            found += self._silence(agent_id, seen, now)
        return found

    def _gap(self, agent_id: str, seen: _AgentSeen, now: datetime) -> list[Finding]:
        beat = seen.beat
        if seen.contiguous is None or not seen.above or beat is None or beat.spool_depth:
            return []
        first_missing = seen.contiguous + 1
        if beat.last_seq < first_missing or seen.missing_since is None:
            return []
        if now - seen.missing_since < self.grace:
            return []
        last_missing = min(seen.above) - 1
        seen.contiguous = last_missing
        _advance(seen)
        seen.missing_since = now if seen.above else None
        return [_seq_gap_finding(agent_id, seen, first_missing, last_missing, now)]

    def _silence(self, agent_id: str, seen: _AgentSeen, now: datetime) -> list[Finding]:
        beat = seen.beat
        if beat is None or beat.controllers_up == 0:
            return []
        last = _sent(beat)
        if now - last < self.silence_after or last.isoformat() in seen.reported_silence:
            return []
        seen.reported_silence.add(last.isoformat())
        return [_silence_finding(agent_id, seen, beat, last, now)]


def _sent(beat: Heartbeat) -> datetime:
    assert beat.sent_at is not None, "the sender stamps every heartbeat"
    return beat.sent_at


#: Seqs kept per agent before the reader first catches up; then the baseline is set early.
MAX_UNJUDGED = 100_000


def _add_seq(seen: _AgentSeen, seq: int, now: datetime) -> None:
    if seen.contiguous is None:
        seen.above.add(seq)  # judged once the reader has caught up (`_set_baseline`)
        seen.missing_since = seen.missing_since or now
        if len(seen.above) >= MAX_UNJUDGED:  # a long history read from the earliest offset
            _set_baseline(seen)
        return
    if seq <= seen.contiguous or seq in seen.above:
        return  # a resend, or from before the baseline
    seen.above.add(seq)
    _advance(seen)
    if seen.above and seen.missing_since is None:
        seen.missing_since = now
    elif not seen.above:
        seen.missing_since = None


def _set_baseline(seen: _AgentSeen) -> None:
    """The lowest seq read so far is the baseline; the grace of a gap above it runs from the
    first read."""
    seen.contiguous = min(seen.above)
    seen.above.discard(seen.contiguous)
    _advance(seen)
    if not seen.above:
        seen.missing_since = None


def _advance(seen: _AgentSeen) -> None:
    assert seen.contiguous is not None
    while seen.contiguous + 1 in seen.above:
        seen.contiguous += 1
        seen.above.discard(seen.contiguous)


def _synthetic(
    agent_id: str, seen: _AgentSeen, *, event_id: str, tag: str, start: datetime,
    now: datetime, reason: str, seq: int,
) -> SuspectChange:
    return SuspectChange(
        event_id=event_id,
        seq=seq,
        agent_id=agent_id,
        site=seen.site,
        line=seen.line,
        controller=ControllerRef(
            id=f"agent:{agent_id}", protocol=seen.protocol, endpoint=f"agent:{agent_id}",
            validated=seen.validated,
        ),
        tag=TagRef(name=tag, address=f"agent:{agent_id}/{tag}", kind=TagKind.MODE),
        occurred_at=start,
        detected_at=now,
        change_kind=ChangeKind.MONITORING_GAP,
        verdict=Verdict.UNAPPROVED,
        verdict_reason=reason,
        gap=MonitoringGap(start=start, end=now),
    )


def _seq_gap_finding(
    agent_id: str, seen: _AgentSeen, first: int, last: int, now: datetime
) -> Finding:
    span = f"{first}" if first == last else f"{first}-{last}"
    start = seen.missing_since or now
    event = _synthetic(
        agent_id, seen, event_id=f"seqgap:{agent_id}:{span}", tag="event-seq", start=start,
        now=now, seq=first,
        reason=f"agent {agent_id} spooled seq {span} but the classifier never received it",
    )
    return Finding(event, _integrity_context(agent_id, IntegrityKind.SEQ_GAP))


def _silence_finding(
    agent_id: str, seen: _AgentSeen, beat: Heartbeat, last: datetime, now: datetime
) -> Finding:
    event = _synthetic(
        agent_id, seen, event_id=f"silence:{agent_id}:{last.isoformat()}", tag="heartbeat",
        start=last, now=now, seq=beat.last_seq,
        reason=(
            f"agent {agent_id} stopped sending heartbeats at {last.isoformat()} while "
            f"{beat.controllers_up} of {beat.controllers_total} controllers were up"
        ),
    )
    return Finding(event, _integrity_context(agent_id, IntegrityKind.AGENT_SILENCE))


def _integrity_context(agent_id: str, kind: IntegrityKind) -> EventContext:
    return EventContext(correlation_key=f"integrity:{agent_id}", integrity=kind)
