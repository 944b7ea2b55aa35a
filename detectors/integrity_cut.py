"""Where the integrity reader starts: one cut in the agents' own time, the same for every partition.

The reader keeps no state: on every start it reads from ``integrity.start_from``. Left to the
Kafka client, "latest" is fixed partition by partition, at the moment the client gets to each,
and is a cut in the broker's *write* order. That order is not the order of ``seq``: the events
of one spool batch go to several partitions at once, and a client retry of one partition's
batch lets another partition's higher ``seq`` be written first. A start between the two skipped
the higher ``seq``, read the lower one, and the lowest ``seq`` read (the baseline) then had a
"gap" above it that was never lost: a false integrity finding (seen in the chaos test under
load: ``seq`` 6-7 written to one partition before the classifier's restart, ``seq`` 5 to another
after it, then ``seqgap:edge-01:6-7``).

`StartCut` makes the start one cut in the agents' time instead. It is a time ``at_ms`` (the
reader's start by its clock; 0 for ``earliest``): every partition starts at its first record
stamped at or after it (the producer's CreateTime, i.e. the agent's clock), and a record stamped
before it does not count for ``seq`` (`StartCut.counts`). An agent's client stamps its events
when they are handed to it, in ``seq`` order, and keeps the stamp when it retries a batch; the
agent's publisher acknowledges only a prefix of what it sent, so a resend goes out (stamped
later) with every row behind it. So what is read of one agent is every ``seq`` above some
``seq`` (and resends): the lowest one read is a sound baseline, whatever order the partitions
were written or read in, and whatever the agent's clock says (a clock behind the classifier's
only moves the cut later for that agent). A publisher that resent a row alone, after the rows
behind it were acknowledged, would break this (the cut could fall between); so would topics on
LogAppendTime (the stamps are then the broker's, a cut in write order again).

Example::

    >>> cut = StartCut("latest", now)
    >>> placed = await cut.place(consumer)        # seek the partitions not placed yet
    >>> cut.placed(tp) and cut.counts(msg)        # count msg's seq
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


class StartCut:
    """The reader's start cut; `place` seeks every partition the client assigns to it."""

    def __init__(self, start_from: Literal["earliest", "latest"], now: datetime) -> None:
        self.at_ms = 0 if start_from == "earliest" else int(now.timestamp() * 1000)
        self._placed: set[TopicPartition] = set()

    def placed(self, tp: TopicPartition) -> bool:
        """True once ``tp`` reads from the cut; what the client read of it before does not count
        (it came from the client's own start, the one that skips)."""
        return tp in self._placed

    def all_placed(self, consumer: AIOKafkaConsumer) -> bool:
        assigned: set[TopicPartition] = consumer.assignment()
        return assigned <= self._placed

    def counts(self, msg: Any) -> bool:
        """Whether a record of a placed partition counts for ``seq``: stamped at or after the
        cut (a record without a stamp cannot be placed in time, and is counted)."""
        stamp = msg.timestamp
        return stamp is None or stamp < 0 or stamp >= self.at_ms

    async def place(self, consumer: AIOKafkaConsumer) -> set[TopicPartition]:
        """Seek every assigned partition not yet placed to its first record at or after the cut
        (its end when there is none); returns the partitions placed now. A broker that does not
        answer leaves them for the next call."""
        assigned: set[TopicPartition] = consumer.assignment()
        new = assigned - self._placed
        if not new:
            return set()
        try:
            # The ends first: a record written between the two answers is then read (and
            # counted only if it is stamped at or after the cut).
            ends = await consumer.end_offsets(list(new))
            found = await consumer.offsets_for_times({tp: self.at_ms for tp in new})
        except (KafkaError, TimeoutError) as exc:
            log.debug("agent watch: cannot place %d partitions yet: %r", len(new), exc)
            return set()
        for tp in new:
            hit = found.get(tp)
            # No record at or after the cut: Kafka answers None, Tansu offset 0 with stamp -1.
            at = hit.offset if hit is not None and hit.timestamp >= self.at_ms else ends[tp]
            consumer.seek(tp, at)
        self._placed |= new
        log.info("agent watch: %d partitions placed at the start cut %d (ms)", len(new), self.at_ms)
        return new
