"""Events of the suspect topic parsed once for both of the classifier's readers.

The group consumer (`detectors.suspects`) and the integrity reader
(`detectors.integrity_reader`) each read every message of the suspect topic, in one process
and one event loop, and each parsed every one (`parse_event`, most of their cost per message).
`ParsedEvents` remembers what one of them parsed, by the message's bytes, until the other
takes it: whichever reader sees a message first parses it, the other gets the same frozen
`SuspectChange` for a hash and a look-up.

The same outcome as `parse_event`, whatever the bytes: a value over ``max_bytes`` (or a
tombstone) is refused before the look-up, as it always was; a value that is not an event is
parsed (and refused, `BadMessage`) by each reader, never remembered; a remembered event is the
one these very bytes parse to (the key is the bytes themselves, not a digest). Only the parse
is shared: whether the event is trusted is judged by each reader, every time
(`TrustedAgents.check`, which remembers its own successes with the key that gave them), so a
change to the trusted keys is never answered from here.

Bounded: a message is forgotten when the second reader takes it, or, when no second reader
comes (a partition this process's group consumer does not own, a reader far behind), once
``size`` newer ones wait (oldest first).

Example::

    >>> parsed = ParsedEvents(16_384)
    >>> event = parsed.parse(msg.value, max_bytes=limit)  # BadMessage as parse_event
"""

from __future__ import annotations

from collections import OrderedDict

from agent.contract import SuspectChange
from detectors.messages import parse_event

#: Messages remembered until the other reader takes them: more than the two readers are
#: usually apart, in messages, on live traffic (each reads batches of at most 5,000).
PARSED_EVENTS = 16_384


class ParsedEvents:
    """Parsed events by the bytes they came as, each until a second reader takes it."""

    def __init__(self, size: int = PARSED_EVENTS) -> None:
        if size < 1:
            raise ValueError(f"ParsedEvents size must be at least 1, not {size}")
        self.size = size
        self._events: OrderedDict[bytes, SuspectChange] = OrderedDict()
        #: Messages answered from the memo, and messages parsed (the first reader's).
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._events)

    def parse(self, value: bytes | None, *, max_bytes: int) -> SuspectChange:
        """`parse_event(value, max_bytes=max_bytes)`, parsed at most once for two readers."""
        if value is None or len(value) > max_bytes:
            return parse_event(value, max_bytes=max_bytes)  # refused, with its reason
        event = self._events.pop(value, None)
        if event is not None:
            self.hits += 1
            return event
        event = parse_event(value, max_bytes=max_bytes)  # (BadMessage: nothing remembered)
        self.misses += 1
        if len(self._events) >= self.size:
            self._events.popitem(last=False)
        self._events[value] = event
        return event
