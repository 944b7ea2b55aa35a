"""Garbage-collector settings for the long-running services (agent and classifier).

Both allocate many short-lived objects per event (parsed messages, models, rows) and keep few
reference cycles. With CPython's default gen-0 threshold of 700 allocations, collections cost
the classifier's batch path (parse, classify, record; 20,000 events, no Kafka) about a fifth
to a quarter of its CPU time: 102 µs/event with gc off against 130-145 with the defaults. A
higher threshold keeps cycle collection but runs it far less often; `gc.freeze` first moves
what start-up built (modules, config, compiled criteria) out of the collector's way for good.

The classifier needs higher thresholds still (`CLASSIFIER_THRESHOLDS`): its pipeline keeps
two or three batches of 2,000 events alive at once (one parsed, one in the records
transaction, one being published), tens of tracked objects each. A young generation of
10,000 was collected several times per batch, each time moving the live batch's objects up a
generation, and every tenth time the middle generation walked them all again (~27 ms each):
in the classifier benchmark's process, gc took 1.0-1.3 CPU-s of a 10 s run, 11-15 µs per event.

The agent (`AGENT_THRESHOLDS`) is a small case: in the ``opcua`` benchmark's window (10,000
OPC UA items, 1,000 changes/s) gc took 1.0-2.2 µs of its 76-95 µs CPU per event at (10000, 10,
10): a young collection every ~2 s and a middle one per 20-30 s that walked again the per-tag
objects the first change of each tag builds. It makes no cyclic garbage there (none in 10 s),
but a young collection resets the count, so the frees of what was allocated before it no
longer offset new allocations; with a young generation of 100,000 there was one collection in
20-30 s (0.5-1.5 µs per event; the total CPU per event did not change beyond its noise). What
the agent builds before its first complete scan (tasks, sources, subscriptions: ~45,000
objects) lives as long as it does: `freeze_long_lived`, once it is ready, keeps it out of
the collections for good.
"""

from __future__ import annotations

import gc

#: Gen-0 threshold: allocations minus deallocations between young collections.
YOUNG_THRESHOLD = 10_000
#: The classifier's (young, middle, old) thresholds: the young generation larger than what its
#: pipeline holds alive, and the middle one collected every 20th young collection, not 10th.
CLASSIFIER_THRESHOLDS = (100_000, 20, 10)
#: The agent's: a young generation larger than its net allocations in 20 s at 1,000 events/s.
AGENT_THRESHOLDS = (100_000, 10, 10)


def tune_for_throughput(thresholds: tuple[int, int, int] | None = None) -> None:
    """Call once, after start-up and before the event loop's work begins. Idempotent.

    ``thresholds``: (young, middle, old) at least; default: the young one at least
    `YOUNG_THRESHOLD`, the others as they are. A threshold already higher is kept."""
    gc.collect()
    gc.freeze()
    current = gc.get_threshold()
    wanted = thresholds or (YOUNG_THRESHOLD, *current[1:])
    gc.set_threshold(*(max(want, now) for want, now in zip(wanted, current, strict=True)))


def freeze_long_lived() -> None:
    """Move every object alive now out of the collector's way for good (`gc.freeze`): call
    once, when what lives as long as the process exists. Garbage is collected first, so only
    live objects are frozen; a frozen one later dropped is still freed by reference counting
    (only one in a reference cycle stays: bounded by what existed at this call)."""
    gc.collect()
    gc.freeze()
