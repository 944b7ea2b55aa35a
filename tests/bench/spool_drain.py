"""``spool_drain_events_per_s`` and ``spool_drain_vs_bare_ratio``: events/s drained from the spool
to the broker after an outage, and that rate ÷ a bare pipelined producer's in the same run.

The agent's real delivery path (`Spool` + `SpoolPublisher`, product defaults: batches of 1,000,
one sent while the one before is acknowledged, acks=all) runs while the broker is down; the
spool fills with N events appended in transactions of 100, as scans would append them. Then the
broker (a fresh Tansu, a separate process) comes up on the port the publisher keeps retrying.
The figure is N ÷ (time from the publisher's reconnect to an empty spool); the time from "broker
listening" to reconnect (the publisher's backoff) is reported apart, and so is the deletion
of the acknowledged rows, which the publisher does once the drain is idle (`Spool.ack` moves a
watermark; `Spool.compact` deletes the rows later). Baseline, same run and
broker: a bare pipelined `AIOKafkaProducer` sending the same N (topic, key, value) rows and
awaiting every delivery."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from agent.kafka.settings import KafkaSettings, TopicNames
from agent.publisher import SpoolPublisher
from agent.spool import Spool
from simulators.broker import EmbeddedBroker, free_port
from tests.bench._common import Result, child_main, run_loop
from tests.bench.measure_spool_drain import fill

KEYS = ["spool_drain_events_per_s", "spool_drain_vs_bare_ratio"]
LIMIT_S = 240.0


async def _wait(predicate: object, limit_s: float, step: float = 0.002) -> bool:
    deadline = time.perf_counter() + limit_s
    while not predicate():  # type: ignore[operator]
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(step)
    return True


async def _bare(bootstrap: str, rows: list[tuple[str, bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(
        **KafkaSettings(bootstrap_servers=bootstrap, enable_idempotence=False).producer_kwargs()
    )
    await producer.start()
    try:
        start = time.perf_counter()
        futures = [await producer.send(topic, value, key=key) for topic, key, value in rows]
        await asyncio.gather(*futures)
        return len(rows) / (time.perf_counter() - start)
    finally:
        await producer.stop()


async def _main(n: int) -> list[Result]:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    settings = KafkaSettings(bootstrap_servers=bootstrap, enable_idempotence=False)
    with tempfile.TemporaryDirectory() as tmp:
        spool = Spool(Path(tmp) / "spool.db", topics=TopicNames())
        publisher = SpoolPublisher(spool, settings)
        await publisher.start()  # the broker is down: the publisher retries with its backoff
        broker = EmbeddedBroker(port=port)
        try:
            append_rate = fill(spool, n)
            rows = [(t, k, v) for _, t, k, v in spool.peek(n)]
            broker.start()
            t_up = time.perf_counter()
            cpu0 = time.process_time()
            if not await _wait(lambda: publisher.connected, 60, 0.001):
                raise TimeoutError("the publisher did not reconnect within 60 s")
            t_conn = time.perf_counter()
            if not await _wait(lambda: spool.depth() == 0, LIMIT_S):
                raise TimeoutError(f"{spool.depth()} of {n} events left after {LIMIT_S:.0f} s")
            t_end = time.perf_counter()
            cpu = time.process_time() - cpu0
            # The acknowledged rows are deleted once the drain is idle: that work, reported
            # apart, is part of the agent's cost of the outage, not of its delivery.
            if not await _wait(lambda: spool.acknowledged_rows() == 0, 60):
                raise TimeoutError(f"{spool.acknowledged_rows()} acknowledged rows not deleted")
            t_compacted, cpu_compacted = time.perf_counter(), time.process_time() - cpu0 - cpu
            await publisher.stop()
            spool.close()
            bare = await _bare(bootstrap, rows)
        finally:
            await publisher.stop()
            broker.stop()
    rate = n / (t_end - t_conn)
    what = "bare pipelined AIOKafkaProducer, same rows, events/s"
    return [
        Result(
            "spool_drain_events_per_s",
            rate,
            baseline=bare,
            baseline_what=what,
            notes=[
                f"{n} events; spool append (fsync per 100) {append_rate:,.0f} events/s",
                f"broker up -> publisher reconnected {t_conn - t_up:.2f} s (backoff);"
                f" incl. that: {n / (t_end - t_up):,.0f} events/s",
                f"publisher process CPU {cpu:.2f} s for the drain"
                f" ({n / cpu:,.0f} events per CPU-second)",
                f"then, idle, the acknowledged rows deleted from the spool file in"
                f" {t_compacted - t_end:.2f} s ({cpu_compacted:.2f} s CPU)",
            ],
        ),
        Result("spool_drain_vs_bare_ratio", rate / bare, baseline=bare, baseline_what=what),
    ]


def run(quick: bool) -> list[Result]:
    return run_loop(_main(20_000 if quick else 100_000))  # type: ignore[no-any-return]


if __name__ == "__main__":
    child_main(KEYS, run)
