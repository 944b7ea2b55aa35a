"""Every labelled change accounted for exactly once: the scenario's labels against what the
pipeline published and recorded.

`read_ledger` gathers, once the pipeline has settled: every event on the agents' topics (read
to their end, resends folded by ``event_id``), the dead letters, the master records with their
evidence, and the event ids the classifier marked processed. `account` compares the labels
with it and returns the problems in words (empty: all accounted for):

- **lost**: a labelled change with no event (same controller, tag and new value), or an event
  the classifier never processed;
- **duplicated**: more events for a change than the scenario made (a change detected twice,
  under two event ids), an event attached twice, two records for one incident;
- **wrong verdict**: the events of a change do not carry the verdict the test expects;
- **unexplained**: an event that no label made, unless it is a monitoring gap on a controller
  the test took away (restart, exception window, dropped connections), or one spanning a moment
  the test made the agent itself blind (killed or stopped it: ``blind_at``).

A change made and overwritten while the agent was blind could not be seen by anyone: it is
accounted for when a monitoring gap on its controller, spanning a ``blind_at`` moment, covers
it from its label's time to past the next change of the same tag (the gap is the finding).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from agent.contract.limits import value_json
from agent.watcher import SESSION_TAG
from detectors.records import MasterRecord, open_store
from simulators.scenario_model import Label

#: Monitoring gaps are findings of their own: allowed on controllers the test took away; so is
#: the agent's report of a new OPC UA server session (a restart: tag `SESSION_TAG`).
GAP_KINDS = {"monitoring_gap"}


@dataclass
class Ledger:
    """What the pipeline made of the scenario (see the module docstring)."""

    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    unreadable: int = 0
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    records: list[MasterRecord] = field(default_factory=list)
    processed: list[str] = field(default_factory=list)

    def evidence_ids(self) -> list[str]:
        return [e.event_id for r in self.records for e in r.evidence]


async def read_to_end(bootstrap: str, topics: Iterable[str]) -> list[tuple[str, bytes]]:
    """(topic, value) of every record on ``topics`` up to their ends now (group-less)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, max_partition_fetch_bytes=8 * 2**20,
                                fetch_max_bytes=16 * 2**20)
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t in topics
                 for p in sorted(consumer.partitions_for_topic(t) or [])]
        if not parts:
            return []
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(parts)
        out: list[tuple[str, bytes]] = []
        async def behind() -> bool:
            return any([await consumer.position(tp) < end for tp, end in ends.items()])

        while await behind():
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batches.items():
                out.extend((tp.topic, r.value or b"") for r in records if r.offset < ends[tp])
        return out
    finally:
        await consumer.stop()


async def read_ledger(bootstrap: str, db: str, *, agent_topics: tuple[str, str],
                      dlq: str = "otwatch.dlq") -> Ledger:
    """The ledger of a pipeline whose records are in ``db`` (SQLite path or PostgreSQL DSN)."""
    import asyncio

    ledger = Ledger()
    for topic, value in await read_to_end(bootstrap, [*agent_topics, dlq]):
        try:
            data = json.loads(value)
        except ValueError:
            ledger.unreadable += 1
            continue
        if topic == dlq:
            ledger.dead_letters.append(data)
        elif _is_event(data):
            ledger.events.setdefault(data["event_id"], data)
        else:
            ledger.unreadable += 1
    ledger.records, ledger.processed = await asyncio.to_thread(_read_records, db)
    return ledger


def _is_event(data: Any) -> bool:
    """An event as the agents publish it (what else is on the topic was written by others)."""
    return (isinstance(data, dict) and isinstance(data.get("event_id"), str)
            and isinstance(data.get("controller"), dict) and isinstance(data.get("tag"), dict)
            and "verdict" in data)


def _read_records(db: str) -> tuple[list[MasterRecord], list[str]]:
    from sqlalchemy import text

    store = open_store(db)
    try:
        try:
            listed = store.list_records()
        except Exception:  # not migrated yet
            return [], []
        full = [store.get_record(r.id) for r in listed]
        with store.database.read() as conn:
            processed = [row[0] for row in conn.execute(text("SELECT event_id FROM "
                                                             "processed_events"))]
        return full, processed
    finally:
        store.close()


def value_key(value: Any) -> Hashable:
    """One key for a value however it travelled: a float with float32 noise, NaN and the
    infinities as the event contract writes them, a long text as the hash of its JSON."""
    if isinstance(value, dict) and "$float" in value:
        return ("float", value["$float"])
    if isinstance(value, dict) and "$truncated" in value:
        return ("sha256", value["$truncated"]["sha256"])
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return ("float", "NaN")
        if math.isinf(value):
            return ("float", "Infinity" if value > 0 else "-Infinity")
        return round(value, 4)
    if isinstance(value, int):
        return round(float(value), 4)
    if isinstance(value, str) and len(value) > 4096:
        return ("sha256", hashlib.sha256(value_json(value)).hexdigest())
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value


def changes(labels: Iterable[Label]) -> list[Label]:
    """The labels of actions that changed a value (a write of the value already there is
    none: nothing to detect)."""
    return [lb for lb in labels if lb.expected_verdict is not None
            and value_key(lb.old_value) != value_key(lb.new_value)]


def _target(controller: str, tag: str | None, value: Any) -> tuple[str, str, Hashable]:
    return controller, tag or "", value_key(value)


def account(
    labels: Iterable[Label],
    ledger: Ledger,
    *,
    verdicts: Mapping[int, str] | None = None,
    faulted: Iterable[str] = (),
    injected: Iterable[str] = (),
    blind_at: Iterable[datetime] = (),
) -> list[str]:
    """The problems in words (see the module docstring); empty when every change is accounted
    for exactly once. ``verdicts``: the verdict the test expects by label ``seq`` where it is
    not the label's own (an unsigned approval from the topic: ``approval_invalid``).
    ``faulted``: controllers the test took away (their monitoring gaps are explained).
    ``injected``: event ids the test wrote itself (forged: never processed as events).
    ``blind_at``: moments the test killed or stopped the agent (see the module docstring)."""
    verdicts = verdicts or {}
    labels = list(labels)
    blind = _blind_gaps(ledger, list(blind_at))
    problems: list[str] = []
    wanted: dict[tuple[str, str, Hashable], list[str]] = defaultdict(list)
    for lb in changes(labels):
        verdict = verdicts.get(lb.seq, lb.expected_verdict or "")
        wanted[_target(lb.controller, lb.tag, lb.new_value)].append(verdict)
    skip = set(injected)
    found: dict[tuple[str, str, Hashable], list[tuple[str, str]]] = defaultdict(list)
    for event_id, ev in ledger.events.items():
        if event_id in skip:
            continue
        key = _target(ev["controller"]["id"], ev["tag"]["name"], ev.get("new_value"))
        found[key].append((event_id, ev["verdict"]))
    for key, expected in wanted.items():
        got = found.get(key, [])
        shown = f"{key[0]}/{key[1]} -> {_show(key[2])}"
        if len(got) < len(expected):
            if len(got) + _unobservable(key, labels, blind) >= len(expected):
                continue  # made and overwritten while the agent was blind: the gap says so
            problems.append(f"lost: {shown}: {len(expected)} change(s), {len(got)} event(s)")
        elif len(got) > len(expected):
            problems.append(f"duplicated: {shown}: {len(expected)} change(s), {len(got)} events "
                            f"{sorted(i for i, _ in got)}")
        elif sorted(v for _, v in got) != sorted(expected):
            problems.append(f"wrong verdict: {shown}: expected {sorted(expected)}, got "
                            f"{sorted(v for _, v in got)}")
    faulted = set(faulted)
    for key, got in found.items():
        if key in wanted:
            continue
        for event_id, _verdict in got:
            ev = ledger.events[event_id]
            gap = ev["change_kind"] in GAP_KINDS or ev["tag"]["name"] == SESSION_TAG
            if gap and (key[0] in faulted or event_id in blind.get(key[0], {})):
                continue
            problems.append(f"unexplained: event {event_id} {ev['change_kind']} {key[0]}/"
                            f"{key[1]} -> {_show(key[2])} ({ev['verdict']})")
    problems += _processed_once(ledger, skip)
    return problems


def _gap_of(ev: dict[str, Any]) -> tuple[datetime, datetime] | None:
    gap = ev.get("gap")
    if not gap or not gap.get("start") or not gap.get("end"):
        return None
    return datetime.fromisoformat(gap["start"]), datetime.fromisoformat(gap["end"])


def _blind_gaps(ledger: Ledger,
                blind_at: list[datetime]) -> dict[str, dict[str, tuple[datetime, datetime]]]:
    """Controller -> {event id: (start, end)} of the monitoring gaps spanning a moment the
    agent was made blind."""
    found: dict[str, dict[str, tuple[datetime, datetime]]] = defaultdict(dict)
    for event_id, ev in ledger.events.items():
        span = _gap_of(ev) if ev["change_kind"] in GAP_KINDS else None
        if span is not None and any(span[0] <= moment <= span[1] for moment in blind_at):
            found[ev["controller"]["id"]][event_id] = span
    return found


def _unobservable(key: tuple[str, str, Hashable], labels: Iterable[Label],
                  blind: dict[str, dict[str, tuple[datetime, datetime]]]) -> int:
    """How many of ``key``'s changes lived only inside a blind gap: made after the gap began,
    overwritten (the tag's next change) before it ended."""
    controller, tag, _ = key
    ordered = sorted((lb for lb in changes(labels) if (lb.controller, lb.tag or "") ==
                      (controller, tag)), key=lambda lb: lb.time)
    count = 0
    for this, following in itertools.pairwise(ordered):
        if _target(this.controller, this.tag, this.new_value) != key:
            continue
        if any(start <= this.time and following.time <= end
               for start, end in blind.get(controller, {}).values()):
            count += 1
    return count


def _processed_once(ledger: Ledger, injected: set[str]) -> list[str]:
    problems = []
    processed = Counter(ledger.processed)
    suspect = [i for i, ev in ledger.events.items()
               if ev["verdict"] != "authorized" and i not in injected]
    missing = [i for i in suspect if i not in processed]
    if missing:
        problems.append(f"lost: {len(missing)} suspect event(s) never processed by the "
                        f"classifier: {missing[:5]}")
    twice = [i for i, n in processed.items() if n > 1]
    if twice:
        problems.append(f"duplicated: processed twice: {twice[:5]}")
    attached = Counter(ledger.evidence_ids())
    again = [i for i, n in attached.items() if n > 1]
    if again:
        problems.append(f"duplicated: evidence attached twice: {again[:5]}")
    by_incident = Counter(r.correlation_key for r in ledger.records if r.state != "closed")
    for key, n in by_incident.items():
        if n > 1:
            problems.append(f"duplicated: {n} open records for the incident {key}")
    return problems


def _show(key: Hashable) -> str:
    text = repr(key)
    return text if len(text) < 80 else text[:77] + "..."
