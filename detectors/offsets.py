"""Which Kafka offsets the classifier may commit, and when: the offset ledger. Pure state.

An offset may be committed for a partition only when everything before it is safe: recorded
in the records store (its transaction committed), its alerts and record events acknowledged by
the broker, and not held back by the burst correlator (a held event is not recorded yet). A
crash before the commit makes Kafka deliver again; the store recognises every event it has.

The ledger follows one partition's life in the group consumer:

1. `consumed`: messages read, up to an offset.
2. `recorded`: a batch's records transaction committed. Per partition, what becomes safe once
   the batch's messages are acknowledged: the first offset still held back by the burst
   correlator, or else everything consumed. Kept as a *plan*, returned by id.
3. `acknowledged`: the broker acknowledged the plan's messages. Returns the offsets to commit
   now: the plan's, for partitions still assigned to this process, where they move the commit
   forward.
4. `committed`: the commit succeeded.
5. `revoked`: a rebalance took partitions away. Their positions, commits and planned offsets
   are forgotten: the next owner reads from the last commit (the held events with them).

Generic over the partition type (the service passes aiokafka's ``TopicPartition``; tests pass
strings). No Kafka, no clock, no I/O.

Example::

    >>> ledger = OffsetLedger[str]()
    >>> ledger.consumed("p0", last_offset=9)
    >>> plan = ledger.recorded(held=[])
    >>> ledger.acknowledged(plan, assigned={"p0"})
    {'p0': 10}
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


class OffsetLedger(Generic[P]):
    """Per partition: how far it was read, what was committed, and the plans awaiting acks."""

    def __init__(self) -> None:
        self._next: dict[P, int] = {}  # the offset after the last message consumed
        self._committed: dict[P, int] = {}
        self._plans: dict[int, dict[P, int]] = {}
        self._ids = itertools.count(1)

    def consumed(self, partition: P, last_offset: int) -> None:
        """Messages of ``partition`` were read, up to and including ``last_offset``."""
        self._next[partition] = last_offset + 1

    def recorded(self, held: Iterable[tuple[P, int]]) -> int:
        """The batch just read is recorded; ``held`` lists (partition, offset) of every event the
        burst correlator still holds. Returns the id of the plan to pass to `acknowledged`."""
        first_held: dict[P, int] = {}
        for partition, offset in held:
            first_held[partition] = min(offset, first_held.get(partition, offset))
        plan_id = next(self._ids)
        self._plans[plan_id] = {
            partition: first_held.get(partition, position)
            for partition, position in self._next.items()
        }
        return plan_id

    def acknowledged(self, plan_id: int, assigned: Collection[P]) -> dict[P, int]:
        """The plan's messages are acknowledged: the offsets to commit now (possibly none)."""
        plan = self._plans.pop(plan_id, {})
        return {
            partition: offset
            for partition, offset in plan.items()
            if partition in assigned and offset > self._committed.get(partition, -1)
        }

    def committed(self, offsets: Mapping[P, int]) -> None:
        """The broker accepted the commit of ``offsets``."""
        self._committed.update(offsets)

    def revoked(self, partitions: Collection[P]) -> None:
        """The partitions belong to another process now: forget them, plans included."""
        for partition in partitions:
            self._next.pop(partition, None)
            self._committed.pop(partition, None)
        for plan in self._plans.values():
            for partition in partitions:
                plan.pop(partition, None)

    def positions(self) -> dict[P, int]:
        """Per partition read so far: the next offset to read (for the consumer lag)."""
        return dict(self._next)

    def pending(self) -> int:
        """How many plans wait for their acknowledgement."""
        return len(self._plans)
