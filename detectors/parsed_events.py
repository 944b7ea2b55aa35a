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
(a reader far behind, a partition revoked in between), once ``size`` newer ones or
``max_bytes`` of newer ones wait (oldest first); one over `KEEP_AT_MOST` bytes is never kept.

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
#: The bytes of the messages remembered, at most: kept before any trust check, so a writer of
#: the topic could fill 16,384 entries with events of ``max_message_bytes`` (up to 2 MiB of
#: memory each, the bytes and the model) when the other reader is behind. Oldest go first.
PARSED_BYTES = 64 * 1024 * 1024
#: A message larger than this is parsed by each reader, never remembered: an agent's events
#: are a few KiB, and a large one costs its parse twice, not its memory for a while.
KEEP_AT_MOST = 64 * 1024

#: The two readers of the suspect topic: the group consumer, the integrity reader.
Reader = Literal["group", "watch"]
_OTHER: dict[Reader, Reader] = {"group": "watch", "watch": "group"}


class ParsedEvents:
    """Parsed events by the bytes they came as, each until a second reader takes it."""

    def __init__(self, size: int = PARSED_EVENTS, max_bytes: int = PARSED_BYTES) -> None:
        if size < 1 or max_bytes < 1:
            raise ValueError(f"ParsedEvents size and bytes must be at least 1, not {size}, "
                             f"{max_bytes}")
        self.size = size
        self.max_bytes = max_bytes
        self._events: OrderedDict[bytes, SuspectChange] = OrderedDict()
        #: The bytes of the messages remembered (their keys).
        self.bytes = 0
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

    def forget(self, reader: Reader, partitions: set[TopicPartition] | None = None) -> None:
        """``reader`` reads ``partitions`` (None: any) no more, or starts again from another
        place (revoked, restarted): nothing is kept for it there until it says it has read."""
        if partitions is None:
            self._read[reader].clear()
        for tp in partitions or ():
            self._read[reader].pop(tp, None)

    def parse(self, value: bytes | None, *, max_bytes: int, keep: bool) -> SuspectChange:
        """`parse_event(value, max_bytes=max_bytes)`, parsed at most once for two readers:
        the event the other reader kept, or parsed here (and kept for it when ``keep``)."""
        if value is None or len(value) > max_bytes:
            return parse_event(value, max_bytes=max_bytes)  # refused, with its reason
        event = self._events.pop(value, None) if self._events else None
        if event is not None:
            self.hits += 1
            self.bytes -= len(value)
            return event
        event = parse_event(value, max_bytes=max_bytes)  # (BadMessage: nothing remembered)
        self.misses += 1
        if not keep or len(value) > KEEP_AT_MOST:
            return event
        while self._events and (
            len(self._events) >= self.size or self.bytes + len(value) > self.max_bytes
        ):
            self.bytes -= len(self._events.popitem(last=False)[0])
        self._events[value] = event
        self.bytes += len(value)
        return event
