"""The least CPU per OPC UA notification the agent's guarantees cost, bare libraries (not a test).

Run: ``.venv/bin/python -m tests.bench.measure_opcua_floor [--window 10] [--idempotent]
[--send-batch]``.

Issue 21 asks for ``opcua_cpu_ratio`` <= 2.0 (the agent's CPU per notification / a bare asyncua
subscription's, `tests.bench.opcua`). This measures what that ratio can be at the least while
every notification still becomes a signed change event, durable before it is acknowledged,
sent to Kafka with acks=all and removed from the spool after the ack. In ONE process, against
the `opcua` benchmark's simulated PLC (10,000 items, 1,000 changes/s, its own process) and
embedded broker (its own process: neither's CPU is counted), one subscription per stage
(100 ms publishing, iterator mode, as the benchmark's bare phase), each stage adding one
guarantee's minimum to the previous one, written with the bare libraries (asyncua, orjson,
hashlib, cryptography, sqlite3, aiokafka), no otwatch code on the path:

0. bare: the benchmark's baseline loop (``async for`` over the subscription, a tuple per
   notification);
1. +batch: the notifications of one publish response taken as one batch (the first awaited,
   the rest of the queue taken without awaiting, as the agent does) and the tag's last value
   kept (a change event carries the old value; the first value of a tag is its baseline);
2. +json: an event-sized dict per notification (the fields of ``otwatch.change/2``, ~1.2 KB
   unsigned; its constant parts built once per tag) dumped by ``orjson`` with sorted keys;
3. +sign: a SHA-256 leaf per event, per batch (trees of at most 256) the interior hashes, one
   Ed25519 signature over the root (``cryptography``), and each event's signature object
   (base64 proof, ~1.5 KB signed) spliced into its bytes;
4. +spool: one SQLite transaction per batch (``executemany`` INSERT + COMMIT; WAL,
   ``synchronous=FULL``, 16 KB pages as the agent's spool), before anything is sent;
5. +kafka: ``AIOKafkaProducer.send`` of each event (acks=all, linger 5 ms, aiokafka's own
   batching), a task awaiting each batch's acks in order;
6. +delete: after the acks, one ``DELETE`` of the batch's rows per batch, committed with
   ``synchronous=NORMAL`` as the agent's removal is (a lost removal only resends);

then the bare loop again (0'), so the baseline brackets the run. Not in the floor (so it is
below what any agent can reach): the snapshot digest (a constant here), the verdict lookup,
the baseline journal, metrics, the event's key order after splicing in the signature.

The garbage collector as in the benchmark's bare phase (which runs in the agent's process,
after it): the agent's thresholds (100,000, 10, 10), what a stage built before its window
frozen. CPU: ``time.process_time()`` of this process over the window, per notification handled in it
(the PLC writes 1,000/s). Ratios are against the mean of 0 and 0' of the same run. The
broker is the benchmark's, whose producers run with ``enable_idempotence`` off;
``--idempotent`` turns it on. ``--send-batch`` hands each batch's events to aiokafka as
record batches of its own (``create_batch``/``send_batch``, as the agent's publisher does)
instead of a ``send`` per event.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import hashlib
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from asyncua.client.client import Client
from asyncua.common.subscription import DataChangeEvent, Subscription
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simulators.broker import EmbeddedBroker
from simulators.plant import OpcUaController
from tests.bench._common import Children, quiet_logs, run_loop
from tests.bench.opcua import TAGS, start_plc

STAGES = ["bare", "+batch", "+json", "+sign", "+spool", "+kafka", "+delete"]
TOPIC = "floor.changes.suspect"
KEY = b"bench/opc-00"
MAX_TREE = 256
ROOT_DOMAIN = b"otwatch-event-batch/1\x00"
JSON_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
#: `agent.runtime.gc_tuning.AGENT_THRESHOLDS`, which the benchmark's bare phase runs under.
GC_THRESHOLDS = (100_000, 10, 10)
INSERT = "INSERT INTO events (id, seq, topic, key, value, size, appended_at) VALUES (?,?,?,?,?,?,?)"


@dataclass
class Counts:
    """Since a stage began: notifications and publish responses handled, events signed."""

    notifications: int = 0
    batches: int = 0
    events: int = 0
    event_bytes: int = 0  # of the signed events


@dataclass
class Floor:
    """What the stages share: the tags' constant parts, the key, the spool, the producer."""

    stage: int
    tags: dict[Any, dict[str, Any]]
    key: Ed25519PrivateKey
    send_batch: bool = False
    db: sqlite3.Connection | None = None
    producer: AIOKafkaProducer | None = None
    last: dict[Any, Any] = field(default_factory=dict)
    seq: int = 0
    inflight: deque[tuple[asyncio.Future[Any], int, int]] = field(default_factory=deque)
    more: asyncio.Event = field(default_factory=asyncio.Event)


def tag_parts(ctrl: OpcUaController, ns: int, client: Client) -> dict[Any, dict[str, Any]]:
    """Per node id, what an event of that tag says that never changes (built once)."""
    out = {}
    for t in ctrl.tags:
        node = client.get_node(f"ns={ns};s={t.node}")
        out[node.nodeid] = {
            "tag": {"address": f"nsu={ctrl.namespace_uri};s={t.node}",
                    "critical_to_quality": False, "kind": "setpoint", "name": t.name,
                    "unit": None},
            "verdict_reason": f"no approved change record for {ctrl.id}/{t.name}",
            "node": node,
        }
    return out


CONTROLLER = {"endpoint": "opc.tcp://127.0.0.1:4840/otwatch/opc-00", "id": "opc-00",
              "protocol": "opcua", "validated": False}
SNAPSHOT = {"sha256": hashlib.sha256(b"snapshot").hexdigest(), "values": {}}


def events_json(floor: Floor, batch: list[DataChangeEvent]) -> list[bytes]:
    """Stage 1-2: the changes of one batch (a tag's first value is its baseline) and, from
    stage 2, each one's event dumped."""
    last, tags, out = floor.last, floor.tags, []
    detected = datetime.now(UTC)
    for ev in batch:
        nodeid = ev.node.nodeid
        value = ev.value
        old = last.get(nodeid, last)
        last[nodeid] = value
        if old is last or floor.stage < 2:
            continue
        parts = tags[nodeid]
        floor.seq += 1
        out.append(orjson.dumps({
            "actor": None, "agent_id": "edge-bench", "approval": None,
            "change_kind": "setpoint_change", "context": {}, "controller": CONTROLLER,
            "detected_at": detected, "event_id": str(uuid.uuid4()), "gap": None,
            "line": "line-1", "new_value": value,
            "occurred_at": ev.data.monitored_item.Value.SourceTimestamp,
            "old_value": old, "omitted": ["snapshot.values"], "schema": "otwatch.change/2",
            "seq": floor.seq, "site": "bench", "snapshot": SNAPSHOT, "tag": parts["tag"],
            "verdict": "unapproved", "verdict_reason": parts["verdict_reason"],
        }, option=JSON_OPTS))
    return out


def b64(h: bytes) -> bytes:
    return b'"' + base64.b64encode(h) + b'"'


def sign(key: Ed25519PrivateKey, key_id: bytes, signed: list[bytes]) -> list[bytes]:
    """Stage 3: RFC 9162 leaves and tree (one per `MAX_TREE` events), one signature per tree,
    each event's bytes with its signature and proof."""
    out: list[bytes] = []
    sha = hashlib.sha256
    for start in range(0, len(signed), MAX_TREE):
        part = signed[start : start + MAX_TREE]
        n = len(part)
        levels = [[sha(b"\x00" + s).digest() for s in part]]
        while len(levels[-1]) > 1:
            lv = levels[-1]
            up = [sha(b"\x01" + lv[j] + lv[j + 1]).digest() for j in range(0, len(lv) - 1, 2)]
            if len(lv) % 2:
                up.append(lv[-1])
            levels.append(up)
        root = levels[-1][0]
        sig = base64.b64encode(key.sign(ROOT_DOMAIN + n.to_bytes(8, "big") + root))
        encoded = [list(map(b64, lv)) for lv in levels[:-1]]
        tail = b'},"value":"' + sig + b'"}}'
        size = b'],"tree_size":' + str(n).encode()
        head = (b',"signature":{"alg":"ed25519-merkle","key_id":"' + key_id
                + b'","proof":{"leaf_index":')
        for i, s in enumerate(part):
            path = []
            j = i
            for enc in encoded:
                if j ^ 1 < len(enc):
                    path.append(enc[j ^ 1])
                j >>= 1
            out.append(b"".join((s[:-1], head, str(i).encode(), b',"path":[', b",".join(path),
                                 size, tail)))
    return out


def spool(db: sqlite3.Connection, first_seq: int, events: list[bytes]) -> None:
    """Stage 4: one fsync'd transaction holding the batch's rows."""
    now = time.time()
    db.execute("BEGIN")
    db.executemany(INSERT, [(first_seq + i, first_seq + i, TOPIC, KEY, v, len(v), now)
                            for i, v in enumerate(events)])
    db.execute("COMMIT")


async def settle(floor: Floor) -> None:
    """Stage 5-6: each batch's acks in order; from stage 6 its rows removed after them."""
    db = floor.db
    assert db is not None
    while True:
        while not floor.inflight:
            floor.more.clear()
            await floor.more.wait()
        last, first_id, last_id = floor.inflight[0]
        await last  # one partition: the batch's other records are acknowledged before it
        floor.inflight.popleft()
        if floor.stage >= 6:
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN")
            db.execute("DELETE FROM events WHERE id BETWEEN ? AND ?", (first_id, last_id))
            db.execute("COMMIT")
            db.execute("PRAGMA synchronous=FULL")


async def handle(floor: Floor, batch: list[DataChangeEvent], counts: Counts,
                 key_id: bytes) -> None:
    """One publish response's notifications through the stages up to ``floor.stage``."""
    counts.notifications += len(batch)
    counts.batches += 1
    events = events_json(floor, batch)
    if floor.stage < 3 or not events:
        return
    events = sign(floor.key, key_id, events)
    counts.events += len(events)
    counts.event_bytes += sum(map(len, events))
    if floor.stage < 4:
        return
    first = floor.seq - len(events) + 1
    assert floor.db is not None
    spool(floor.db, first, events)
    if floor.stage < 5:
        return
    producer = floor.producer
    assert producer is not None
    delivery = await (send_batch(producer, events) if floor.send_batch
                      else send_each(producer, events))
    floor.inflight.append((delivery, first, floor.seq))
    floor.more.set()


async def send_each(producer: AIOKafkaProducer, events: list[bytes]) -> asyncio.Future[Any]:
    """``producer.send`` of each event (aiokafka batches them); the last one's delivery."""
    delivery = None
    for value in events:
        delivery = await producer.send(TOPIC, value, key=KEY)
    assert delivery is not None
    return delivery


async def send_batch(producer: AIOKafkaProducer, events: list[bytes]) -> asyncio.Future[Any]:
    """``--send-batch``: the events appended to aiokafka record batches of our own (its
    ``create_batch``, closed, ``send_batch``), as the agent's publisher hands them over."""
    batch = producer.create_batch()
    for value in events:
        if batch.append(timestamp=None, key=KEY, value=value) is None:  # full: closed
            await producer.send_batch(batch, TOPIC, partition=0)
            batch = producer.create_batch()
            batch.append(timestamp=None, key=KEY, value=value)
    batch.close()  # nothing more comes: sent at once, not after linger_ms
    return await producer.send_batch(batch, TOPIC, partition=0)


def take_queued(sub: Subscription, first: Any) -> list[DataChangeEvent]:
    """``first`` and what else of its publish response is queued, without awaiting."""
    out = [first] if type(first) is DataChangeEvent else []
    queue = sub._event_queue
    assert queue is not None
    get = queue.get_nowait
    for _ in range(queue.qsize()):
        ev = get()
        if ev is None:  # the subscription's end: put back for the iterator to meet
            queue.put_nowait(ev)
            break
        if type(ev) is DataChangeEvent:
            out.append(ev)
    return out


async def consume(sub: Subscription, floor: Floor, counts: Counts, key_id: bytes,
                  names: dict[Any, str]) -> None:
    if floor.stage == 0:  # the benchmark's bare loop, as `tests.bench.opcua.bare_phase`
        seen: list[tuple[str, Any, float]] = []
        async for ev in sub:
            if not isinstance(ev, DataChangeEvent):
                continue
            seen.append((names[ev.node.nodeid], ev.value, time.time()))
            counts.notifications += 1
        return
    async for first in sub:
        await handle(floor, take_queued(sub, first), counts, key_id)


def open_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA page_size=16384")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL,"
               " topic TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,"
               " size INTEGER NOT NULL, appended_at REAL NOT NULL)")
    return db


@dataclass
class StageResult:
    name: str
    us: float
    batch: float
    event_bytes: float


async def stage(client: Client, nodes: list[Any], floor: Floor, window: float,
                names: dict[Any, str], start_producer: Callable[[], Any]) -> StageResult:
    """One subscription through stages 0..``floor.stage``: CPU per notification over ``window``."""
    counts, key_id = Counts(), b"b9b110d918bf2acf"
    sub = await client.create_subscription(100, queue_maxsize=4 * TAGS)
    settler = None
    if floor.stage >= 5:
        floor.producer = await start_producer()
        settler = asyncio.create_task(settle(floor), name="floor-settle")
    task = asyncio.create_task(consume(sub, floor, counts, key_id, names), name="floor-consume")
    try:
        for i in range(0, len(nodes), 1000):
            await sub.subscribe_data_change(nodes[i : i + 1000], queuesize=1)
        await asyncio.sleep(3.0)  # the initial values arrive (each tag's baseline)
        gc.collect()  # what the stage's set-up built lives as long as it: out of the way
        gc.freeze()
        before = Counts(**vars(counts))
        cpu0 = time.process_time()
        await asyncio.sleep(window)
        cpu = time.process_time() - cpu0
        n = counts.notifications - before.notifications
        batches = counts.batches - before.batches
        events = counts.events - before.events
        size = (counts.event_bytes - before.event_bytes) / max(events, 1)
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=5)
        await sub.delete()
        if settler is not None:
            while floor.inflight and not settler.done():  # the last acks (and removals)
                await asyncio.wait({settler}, timeout=0.05)
            settler.cancel()
            await asyncio.wait({settler}, timeout=5)
        if floor.producer is not None:
            await floor.producer.stop()
            floor.producer = None
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise RuntimeError(f"stage {STAGES[floor.stage]} failed") from task.exception()
    return StageResult(STAGES[floor.stage], 1e6 * cpu / max(n, 1),
                       n / max(batches, 1) if floor.stage else float("nan"), size)


async def measure(workdir: Path, children: Children, window: float, idempotent: bool,
                  send_batch: bool) -> None:
    # The collector as the benchmark's bare phase has it (it runs after the agent's, in the
    # agent's process): the agent's thresholds, what was built before the window frozen.
    gc.set_threshold(*GC_THRESHOLDS)
    ctrl, log, port = start_plc(workdir, children)
    log.with_name(log.name + ".go").touch()  # the PLC starts changing values
    with EmbeddedBroker() as broker:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(TOPIC, 1, 1)])
        finally:
            await admin.close()

        async def start_producer() -> AIOKafkaProducer:
            producer = AIOKafkaProducer(
                bootstrap_servers=broker.bootstrap, acks="all", enable_idempotence=idempotent,
                linger_ms=5, max_batch_size=262_144)
            await producer.start()
            return producer

        key, results = Ed25519PrivateKey.generate(), []
        for i in [*range(len(STAGES)), 0]:
            # A client per stage, as the benchmark's bare phase has. Its liveness probe gets
            # 10 s (asyncua's default, 1 s, is the probe's timeout too: the spool's fsyncs on
            # a busy disk hold the loop past it and the client drops the session).
            client = Client(f"opc.tcp://127.0.0.1:{port}{ctrl.endpoint_path()}", timeout=10,
                            watchdog_intervall=10)
            await client.connect()
            floor = None
            try:
                ns = (await client.get_namespace_array()).index(ctrl.namespace_uri)
                tags = tag_parts(ctrl, ns, client)
                nodes = [t["node"] for t in tags.values()]
                names = {nodeid: t["tag"]["name"] for nodeid, t in tags.items()}
                floor = Floor(i, tags, key, send_batch)
                if i >= 4:
                    floor.db = open_db(workdir / f"spool-{len(results)}.db")
                results.append(await stage(client, nodes, floor, window, names,
                                           start_producer))
            finally:
                if floor is not None and floor.db is not None:
                    floor.db.close()
                await client.disconnect()
            children.check_alive()
            print(f"  stage {results[-1].name}: {results[-1].us:.1f} us/notification",
                  file=sys.stderr, flush=True)
    report(results, window, idempotent, send_batch)


def report(results: list[StageResult], window: float, idempotent: bool,
           send_batch: bool) -> None:
    bare = statistics.mean([results[0].us, results[-1].us])
    print(f"window {window:.0f} s per stage; bare {results[0].us:.1f} / {results[-1].us:.1f}"
          f" us per notification (0 / 0'), baseline {bare:.1f}; kafka idempotence"
          f" {'on' if idempotent else 'off'},"
          f" {'send_batch of record batches' if send_batch else 'send per event'}")
    prev = bare
    for r in results[1:-1]:
        size = f" event {r.event_bytes:.0f} B" if r.event_bytes else ""
        print(f"  {r.name:8} {r.us:6.1f} us/notification  ratio {r.us / bare:4.2f}"
              f"  stage {r.us - prev:+6.1f} us  batch {r.batch:.0f}{size}")
        prev = r.us
    print(f"floor ratio {results[-2].us / bare:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--idempotent", action="store_true")
    parser.add_argument("--send-batch", action="store_true")
    args = parser.parse_args()
    quiet_logs()
    with tempfile.TemporaryDirectory() as tmp:
        children = Children(Path(tmp))
        try:
            run_loop(measure(Path(tmp), children, args.window, args.idempotent,
                             args.send_batch))
        finally:
            children.stop_all()


if __name__ == "__main__":
    main()
