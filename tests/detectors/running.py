"""Helpers for the classifier tests against the real broker: a classifier process (stopped by
PID), events produced with aiokafka, topics read back, records read from SQLite
(`tests.support.pipeline.records`, re-exported here)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agent.contract import EventSigner, SuspectChange
from agent.kafka.settings import KafkaSettings
from agent.kafka.topics import ensure_topics
from simulators.broker import free_port
from tests.support import pipeline
from tests.support.pipeline import records as records  # re-exported

ROOT = Path(__file__).resolve().parents[2]
TOPICS = ["otwatch.changes.suspect", "otwatch.changes.authorized", "otwatch.agents.heartbeat",
          "otwatch.alerts", "otwatch.records", "otwatch.dlq"]
T = TypeVar("T")


#: The test agent's event-signing key: `write_config` trusts it, `signed` signs with it.
AGENT = EventSigner.generate()


def signed(event: SuspectChange, signer: EventSigner = AGENT) -> tuple[bytes, bytes]:
    """(key, value) of the message an agent with ``signer`` publishes for ``event``."""
    return event.kafka_key(), signer.sign_to_json(event)[1]


def write_config(workdir: Path, bootstrap: str, **integrity: Any) -> Path:
    cfg = {
        "classifier": {"records_db": str(workdir / "records.db"),
                       "criteria": str(ROOT / "config" / "criteria.yaml"),
                       "status_file": "status.json", "session_timeout_ms": 6000,
                       "require_signed_events": True,
                       "agent_keys": {AGENT.key_id: AGENT.public_key_b64}},
        "kafka": {"bootstrap_servers": bootstrap, "enable_idempotence": False,
                  "topic_partitions": 4},
        "metrics": {"port": free_port()},
        "integrity": integrity,
    }
    path = workdir / "classifier.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@contextmanager
def classifier(config: Path, name: str = "classifier",
               module: str = "detectors.cli") -> Iterator[subprocess.Popen[bytes]]:
    """One `python -m detectors.cli run` process (or another entry point with the same
    arguments, e.g. `tests.detectors.crash_after_record`); stopped by PID (SIGTERM, then
    SIGKILL)."""
    workdir = config.parent / name
    workdir.mkdir(exist_ok=True)
    cfg = yaml.safe_load(config.read_text())
    cfg["classifier"]["status_file"] = str(workdir / "status.json")
    cfg["metrics"]["port"] = free_port()
    own = workdir / "classifier.yaml"
    own.write_text(yaml.safe_dump(cfg))
    with open(workdir / "log.txt", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "run", "--config", str(own)],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def status(config: Path, name: str = "classifier") -> dict[str, Any]:
    path = config.parent / name / "status.json"
    return json.loads(path.read_text()) if path.exists() else {}


def log_text(config: Path, name: str = "classifier") -> str:
    path = config.parent / name / "log.txt"
    return path.read_text() if path.exists() else ""


def metrics_port(config: Path, name: str = "classifier") -> int:
    cfg = yaml.safe_load((config.parent / name / "classifier.yaml").read_text())
    return int(cfg["metrics"]["port"])


def wait_until(predicate: Callable[[], T], timeout: float, what: str,
               proc: subprocess.Popen[bytes] | None = None) -> T:
    """`tests.support.pipeline.wait_until`, failing at once if the classifier ``proc`` exits."""

    def alive() -> None:
        if proc is not None and proc.poll() is not None:
            args = proc.args
            config = args[-1] if isinstance(args, list) else ""
            log = Path(str(config)).parent / "log.txt"  # see `classifier`
            tail = log.read_text()[-3000:] if log.exists() else "(no log)"
            raise AssertionError(
                f"the classifier exited ({proc.returncode}) before {what}; its log ends:\n{tail}"
            )

    return pipeline.wait_until(predicate, timeout, what, alive)


def settings(bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=bootstrap, enable_idempotence=False,
                         topic_partitions=4)


async def create_topics(bootstrap: str) -> None:
    await ensure_topics(settings(bootstrap), TOPICS)


async def produce(
    bootstrap: str, topic: str, messages: Sequence[tuple[bytes | None, bytes]]
) -> None:
    producer = AIOKafkaProducer(**settings(bootstrap).producer_kwargs())
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str, want: Callable[[list[dict[str, Any]]], bool],
                     limit_s: float = 20.0) -> list[dict[str, Any]]:
    """Read a topic from the start until ``want`` holds for what was read (or time runs out)."""
    consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest",
                                **settings(bootstrap).consumer_kwargs())
    await consumer.start()
    seen: list[dict[str, Any]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while loop.time() < deadline and not want(seen):
            batches = await consumer.getmany(timeout_ms=300)
            seen += [json.loads(m.value) for msgs in batches.values() for m in msgs]
    finally:
        await consumer.stop()
    return seen


async def committed(bootstrap: str, group: str,
                    topic: str = "otwatch.changes.suspect") -> int:
    """A consumer group's committed offsets on ``topic``, summed (read by a consumer that
    names the group but never joins it)."""
    reader = AIOKafkaConsumer(group_id=group, enable_auto_commit=False,
                              **settings(bootstrap).consumer_kwargs())
    await reader.start()
    try:
        partitions = sorted(reader.partitions_for_topic(topic) or [])
        offsets = [await reader.committed(TopicPartition(topic, p)) for p in partitions]
    finally:
        await reader.stop()
    return sum(offset or 0 for offset in offsets)
