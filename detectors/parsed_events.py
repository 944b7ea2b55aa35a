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

A reader keeps what it parsed only when the other one is still to read it: each says how far it
has read each partition (`passed`), and keeps a message above the other's last offset of that
partition (the other has read some of the partition, so it reads it, and has not read this).
Kept for nobody, an event costs its memory and the allocator's cache for nothing: ~3 us a
message when the integrity reader reads none of the group consumer's messages (it starts at
``latest``, after a backlog) or the group consumer owns few of the partitions it reads.

Bounded: a message is forgotten when the second reader takes it, or, when it does not come
(a reader far behind, a partition revoked in between), once ``size`` newer ones wait (oldest
first).

Example::

    >>> parsed = ParsedEvents(16_384)
    >>> other_at = parsed.passed("watch", tp, messages[-1].offset)  # the group consumer's
    >>> keep = other_at is not None and msg.offset > other_at
    >>> event = parsed.parse(msg.value, max_bytes=limit, keep=keep)  # BadMessage as ever
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from aiokafka import TopicPartition

from agent.contract import SuspectChange
from detectors.messages import parse_event

#: Messages remembered until the other reader takes them: more than the two readers are
#: usually apart, in messages, on live traffic (each reads batches of at most 5,000).
PARSED_EVENTS = 16_384

#: The two readers of the suspect topic: the group consumer, the integrity reader.
Reader = Literal["group", "watch"]
_OTHER: dict[Reader, Reader] = {"group": "watch", "watch": "group"}


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
        self._read: dict[Reader, dict[TopicPartition, int]] = {"group": {}, "watch": {}}

    def __len__(self) -> int:
        return len(self._events)

    def passed(self, reader: Reader, tp: TopicPartition, offset: int) -> int | None:
        """``reader`` has read ``tp`` up to ``offset``; how far the other reader has (None:
        not at all, since it started or since this process has owned ``tp``)."""
        self._read[reader][tp] = offset
        return self._read[_OTHER[reader]].get(tp)

    def forget(self, reader: Reader, partitions: set[TopicPartition]) -> None:
        """``reader`` reads ``partitions`` no more (revoked): nothing is kept for it there."""
        for tp in partitions:
            self._read[reader].pop(tp, None)

    def parse(self, value: bytes | None, *, max_bytes: int, keep: bool) -> SuspectChange:
        """`parse_event(value, max_bytes=max_bytes)`, parsed at most once for two readers:
        the event the other reader kept, or parsed here (and kept for it when ``keep``)."""
        if value is None or len(value) > max_bytes:
            return parse_event(value, max_bytes=max_bytes)  # refused, with its reason
        event = self._events.pop(value, None) if self._events else None
        if event is not None:
            self.hits += 1
            return event
        event = parse_event(value, max_bytes=max_bytes)  # (BadMessage: nothing remembered)
        self.misses += 1
        if not keep:
            return event
        if len(self._events) >= self.size:
            self._events.popitem(last=False)
        self._events[value] = event
        return event
