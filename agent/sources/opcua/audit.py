"""Who made a change: OPC UA audit write events matched to data-change notifications.

An auditing server raises ``AuditWriteUpdateEventType`` (on the Server object) for every
Write, naming the node written and the acting user (``ClientUserId``). The event and the
data-change notification of that node travel separately and arrive in either order. This
pure matcher (no clock of its own: pass ``now``, monotonic seconds) pairs them:

- an audit event is kept for ``window_s`` and gives its user to a change of its node to the
  value it wrote (never to another value: a wrong actor is worse than none);
- a change with no audit event yet is held for at most ``hold_s`` (one publishing interval),
  then released without an actor;
- the changes of one node are released in the order they came.

Example::

    m = ActorMatcher(window_s=2.0, hold_s=0.25)
    m.change(Change("temperature_sp", "ns=2;s=T", reading), now=10.0)   # held: []
    m.audit(AuditedWrite("ns=2;s=T", "j.doe", 185.0), now=10.1)        # [(change, "j.doe")]
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

from agent.contract import TagValue
from agent.sources.base import Reading


@dataclass(frozen=True, slots=True)
class AuditedWrite:
    node: str
    user: str
    new_value: TagValue


class Change(NamedTuple):
    """A data change notification's tag, node and reading (a named tuple: one is made per
    notification, at a third of a frozen dataclass's cost)."""

    tag: str
    node: str
    reading: Reading


#: A change ready to report, with the user who made it where an audit event said so.
Attributed = tuple[Change, str | None]


class ActorMatcher:
    def __init__(self, window_s: float, hold_s: float) -> None:
        self.window_s = window_s
        self.hold_s = hold_s
        self._writes: dict[str, deque[tuple[float, AuditedWrite]]] = {}
        self._held: deque[tuple[float, Change]] = deque()

    def change(self, change: Change, now: float) -> list[Attributed]:
        """A data change: released at once if its audit event is here (or holding is off)."""
        self._expire(now)
        write = self._take_write(change.node, change.reading.value)
        if write is not None:
            return [*self._release_node(change.node, len(self._held)), (change, write.user)]
        if self.hold_s <= 0:
            return [(change, None)]
        self._held.append((now + self.hold_s, change))
        return []

    def audit(self, write: AuditedWrite, now: float) -> list[Attributed]:
        """An audit event: gives its user to a held change of that node, or waits for one."""
        self._expire(now)
        match = next((h for h in self._held
                      if h[1].node == write.node and h[1].reading.value == write.new_value), None)
        if match is not None:
            earlier = self._release_node(write.node, self._held.index(match))
            self._held.remove(match)
            return [*earlier, (match[1], write.user)]
        self._writes.setdefault(write.node, deque()).append((now + self.window_s, write))
        return []

    def due(self, now: float) -> list[Attributed]:
        """Held changes whose wait is over, released without an actor, oldest first."""
        out: list[Attributed] = []
        while self._held and self._held[0][0] <= now:
            out.append((self._held.popleft()[1], None))
        return out

    def idle(self) -> bool:
        """Nothing held and no audit write waiting: a change would pass straight through."""
        return not self._held and not self._writes

    def next_due(self) -> float | None:
        """When the oldest held change must be released (None when nothing is held)."""
        return self._held[0][0] if self._held else None

    def _release_node(self, node: str, before: int) -> list[Attributed]:
        """Release the held changes of ``node`` among the first ``before``: order per node."""
        out = [held for _, held in list(self._held)[:before] if held.node == node]
        self._held = deque(h for h in self._held if not any(h[1] is c for c in out))
        return [(c, None) for c in out]

    def _take_write(self, node: str, value: TagValue) -> AuditedWrite | None:
        writes = self._writes.get(node)
        if not writes:
            return None
        pick = next((i for i, (_, w) in enumerate(writes) if w.new_value == value), None)
        if pick is None:
            return None
        write = writes[pick][1]
        del writes[pick]
        if not writes:
            del self._writes[node]
        return write

    def _expire(self, now: float) -> None:
        for node in list(self._writes):
            writes = self._writes[node]
            while writes and writes[0][0] <= now:
                writes.popleft()
            if not writes:
                del self._writes[node]
