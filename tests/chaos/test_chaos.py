"""Chaos while a scenario plays (issue 14): every process killed in turn, the broker's network
and the records database cut, a PLC restarted, and each hostile input injected; afterwards
every labelled change is accounted for exactly once and a new change is still classified.

One pipeline (`tests.chaos.harness.FaultyPipeline`: real broker, real PostgreSQL, the real
processes, the simulated plant in this process) plays a scenario built here. The faults come
in a fixed order, each once the scenario has reached a given label (waits on conditions, never
on the clock), so they overlap the changes around them:

====  ==========================================  ============================================
step  while the scenario plays ...                fault
====  ==========================================  ============================================
A     an unapproved oven change was just made     SIGKILL the classifier, start it again
B     a setpoint just became NaN                  SIGKILL the agent, start it again
C     ... and +inf; -inf and a 2 s Modbus         the broker's network cut (every client)
      illegal-data-address window come next
D     a 1.5 MB OPC UA string was just written     SIGKILL the records web service, start again
E     the oven PLC just restarted (renumbered)    PostgreSQL cut off (the classifier holds)
F     a single-use approval is replayed           a >1 MB message and a forged event written
                                                  to the suspect topic
G     a change approved on the topic (signed)     the network cut, the agent stopped (SIGTERM)
      comes next, and one approved unsigned       during the cut, started again once it is back
====  ==========================================  ============================================

The seven hostile inputs of issue 14: (1) the >1 MB message, (2) the 1.5 MB string, (3) the
illegal-address window, (4) NaN and ±inf, (5) PostgreSQL and the broker away (a stop during
the cut included), (6) metrics per process (each process here serves its own), (7) an unsigned
approval on the topic, a replayed single-use approval, a forged event.

e2e: the real broker and processes (marker ``e2e``); PostgreSQL (marker ``pg``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from agent.approvals.signing import generate_keypair, sign_approval
from agent.contract import EventSigner
from agent.kafka.settings import TopicNames
from simulators.broker import free_port
from simulators.player import play
from simulators.scenario_model import Label, Scenario
from tests.approvals.factory import record
from tests.chaos.accounting import Ledger, account, changes, read_ledger
from tests.chaos.harness import FaultyPipeline, postgres_records, scrape, until
from tests.support.events import make_event

pytestmark = [pytest.mark.e2e, pytest.mark.pg, pytest.mark.timeout(900)]

TOPICS = TopicNames()
CHANGE_CONTROL_PRIVATE, CHANGE_CONTROL_PUBLIC = generate_keypair()
#: 1.5 MB: an OPC UA string larger than a Kafka message may be.
HUGE = "ABCDEFGH" * 187_500
#: Label seq -> the verdict the test expects where the label's own (from the scenario's
#: ``approved``) is not the whole story: approvals from the topic.
TOPIC_VERDICTS = {11: "authorized", 12: "approval_invalid"}
#: Controllers the test takes away (restart, exception window): monitoring gaps allowed.
FAULTED = ("oven-01", "press-01")


def chaos_scenario() -> Scenario:
    """The timeline; ``at`` in seconds. Seq = position (1-based), as the labels number it.

    The NaN (3) stands for 11 s: the agent is killed just after it is written and must be
    back (a cold start, slow on a loaded machine) before the next change overwrites it; a
    change that lived only while the agent was down for less than ``monitoring_gap_min_s``
    (5 s) is one nobody could have seen, and no gap reports it either."""
    c = "change"
    actions: list[dict[str, Any]] = [
        {"at": 1, "action": c, "controller": "press-01", "tag": "temperature_sp",
         "value": 185.0, "actor": "j.doe", "approved": True},                        # 1
        {"at": 3, "action": c, "controller": "oven-01", "tag": "temperature_sp",
         "value": 230.0},                                                              # 2 A
        {"at": 5, "action": c, "controller": "press-02", "tag": "temperature_sp",
         "value": float("nan")},                                                       # 3 B
        {"at": 16, "action": c, "controller": "press-02", "tag": "temperature_sp",
         "value": float("inf")},                                                       # 4 C
        {"at": 19, "action": c, "controller": "press-02", "tag": "temperature_sp",
         "value": float("-inf")},                                                      # 5
        {"at": 21, "action": "modbus_exception", "controller": "press-01",
         "exception": "illegal_address", "duration_s": 2},                             # 6
        {"at": 24, "action": c, "controller": "oven-01", "tag": "program_checksum",
         "value": HUGE, "change_kind": "program_change"},                              # 7 D
        {"at": 27, "action": "restart", "controller": "oven-01", "downtime_s": 2,
         "renumber": True},                                                            # 8 E
        {"at": 32, "action": c, "controller": "press-01", "tag": "temperature_sp",
         "value": 180.0},                                                              # 9
        {"at": 35, "action": c, "controller": "press-01", "tag": "temperature_sp",
         "value": 185.0, "actor": "j.doe"},                               # 10 F: the replay
        {"at": 38, "action": c, "controller": "press-02", "tag": "force_sp",
         "value": 260.5, "actor": "j.doe"},                                # 11 G: signed, topic
        {"at": 41, "action": c, "controller": "press-02", "tag": "stroke_rate_sp",
         "value": 35, "actor": "mallory"},                                 # 12 unsigned, topic
        {"at": 44, "action": c, "controller": "oven-01", "tag": "dwell_time_sp",
         "value": 45.0},                                                               # 13
        {"at": 47, "action": c, "controller": "press-02", "tag": "temperature_sp",
         "value": 176.0},                                                              # 14
    ]
    return Scenario.model_validate({"name": "chaos", "actions": actions})


def topic_approvals() -> list[tuple[bytes, bytes]]:
    """CR-T1 signed by change control (force_sp 260.5), CR-T2 the same but unsigned
    (stroke_rate_sp 35): what an attacker with produce rights on the topic can write."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    window = {"valid_from": now - timedelta(hours=1), "valid_until": now + timedelta(hours=2),
              "approved_at": now - timedelta(hours=1)}
    signed = sign_approval(record(id="CR-T1", controller="press-02", tag="force_sp",
                                  expected={"exact": 260.5}, **window), CHANGE_CONTROL_PRIVATE)
    unsigned = record(id="CR-T2", controller="press-02", tag="stroke_rate_sp",
                      expected={"exact": 35}, **window)
    return [(b"CR-T1", signed.model_dump_json(exclude_none=True).encode()),
            (b"CR-T2", unsigned.model_dump_json(exclude_none=True).encode())]


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False,
                                acks="all", max_request_size=8 * 2**20)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def healthy(port: int) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=3)
        ) as resp:
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    name = f"chaos_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest_asyncio.fixture
async def pipeline(tmp_path: Path, pg_schema: str) -> AsyncIterator[FaultyPipeline]:
    approvals = tmp_path / "scenario-approvals.yaml"
    approvals.write_text("approvals: []\n")
    running = FaultyPipeline(
        tmp_path,
        records=postgres_records(("127.0.0.1", 5432), pg_schema, free_port()),
        approvals_files=[approvals],
        agent_settings={"approvals": {"from_topic": True,
                                      "trusted_keys": [CHANGE_CONTROL_PUBLIC]}},
    )
    try:
        await running.start(before_processes=lambda: produce(
            running.bootstrap, TOPICS.approvals, topic_approvals()))
        yield running
    finally:
        await running.stop()


class Chaos:
    """The faults, each once the scenario has reached its label; what each saw, kept."""

    def __init__(self, pipeline: FaultyPipeline, labels_file: Path) -> None:
        self.p = pipeline
        self.labels_file = labels_file
        self.stop_exit: int | None = None
        self.injected: list[str] = []
        #: When the agent was killed or stopped: its monitoring gaps across these are explained.
        self.blind_at: list[datetime] = []
        self.web_back = False

    def played(self) -> int:
        """How many actions the scenario has played (one label line each, flushed)."""
        if not self.labels_file.exists():
            return 0
        return self.labels_file.read_bytes().count(b"\n")

    async def at_label(self, seq: int) -> None:
        await until(lambda: self.played() >= seq, 120, f"scenario label {seq}")

    async def run(self) -> None:
        p = self.p
        await self.at_label(2)                                   # A
        await p.kill("classifier")
        p.start_process("classifier")
        await self.at_label(3)                                   # B
        self.blind_at.append(datetime.now(UTC))
        await p.kill("agent")
        p.start_process("agent")
        await self.at_label(4)                                   # C
        await p.cut_kafka()
        await self.at_label(6)
        await p.restore_kafka()
        await self.at_label(7)                                   # D
        await p.kill("web")
        p.start_process("web")
        self.web_back = await until(lambda: healthy(p.web_port), 60, "the web service back")
        await self.at_label(8)                                   # E
        await p.cut_database()
        await self.at_label(10)
        await p.restore_database()
        await self.inject_messages()                             # F
        await self.at_label(11)                                  # G
        await p.cut_kafka()
        self.blind_at.append(datetime.now(UTC))
        self.stop_exit = await p.terminate("agent")
        await p.restore_kafka()
        p.start_process("agent")

    async def inject_messages(self) -> None:
        """A >1 MB message and an event signed by a key no classifier trusts."""
        forged = make_event(agent_id="edge-01", new_value=999.0, seq=1)
        self.injected.append(forged.event_id)
        forged_value = EventSigner.generate().sign_to_json(forged)[1]
        await produce(self.p.bootstrap, TOPICS.suspect, [
            (b"plant-1/oven-01", b'{"event_id": "x", "pad": "' + b"x" * 1_200_000 + b'"}'),
            (forged.kafka_key(), forged_value),
        ])


async def settled(pipeline: FaultyPipeline, labels: list[Label], chaos: Chaos) -> Ledger:
    """Wait until the ledger accounts for every labelled change (or give up and return it)."""
    last: Ledger | None = None

    async def accounted() -> bool:
        nonlocal last
        last = await read_ledger(pipeline.bootstrap, pipeline.db.direct,
                                 agent_topics=(TOPICS.suspect, TOPICS.authorized))
        return not account(labels, last, verdicts=TOPIC_VERDICTS, faulted=FAULTED,
                           injected=chaos.injected, blind_at=chaos.blind_at)

    try:
        await until(accounted, 180, "every change accounted for", pipeline.check_alive, 2.0)
    except AssertionError:
        pass  # the accounting below says what is missing
    assert last is not None
    return last


async def test_chaos_while_a_scenario_plays_loses_nothing_and_duplicates_nothing(
    pipeline: FaultyPipeline, tmp_path: Path
) -> None:
    p = pipeline
    assert p.plant is not None
    agent_metrics = p.metrics_port("agent")
    await until(lambda: _equals(scrape(agent_metrics, "otwatch_agent_approvals_loaded"), 2),
                60, "the topic's two approvals read")
    await until(lambda: _equals(scrape(agent_metrics, "otwatch_agent_approvals_uses_known"), 1),
                60, "the uses of single-use approvals read")
    chaos = Chaos(p, tmp_path / "labels.jsonl")
    player = asyncio.create_task(play(
        p.plant, chaos_scenario(), labels_out=chaos.labels_file,
        approvals_out=tmp_path / "scenario-approvals.yaml"))
    try:
        await chaos.run()
        labels = await player
    finally:
        player.cancel()
    assert len(labels) == 14
    await p.wait_ready()
    ledger = await settled(p, labels, chaos)
    problems = account(labels, ledger, verdicts=TOPIC_VERDICTS, faulted=FAULTED,
                       injected=chaos.injected, blind_at=chaos.blind_at)
    assert problems == [], "\n".join(problems)
    assert len(changes(labels)) == 12  # two are faults, no change
    assert chaos.stop_exit == 0, "the agent stopped during a broker cut should exit 0"
    assert chaos.web_back
    # (1) the >1 MB message went to the dead letters, once; the forged event is a finding.
    assert [d["reason"].split(":")[0] for d in ledger.dead_letters] == ["too large"]
    forged = [e for r in ledger.records for e in r.evidence if e.event_id in chaos.injected]
    assert forged == [], "a forged event must be a finding, never the record it claims"
    (finding,) = [r for r in ledger.records if r.correlation_key == "integrity:edge-01"]
    assert "DI-4" in finding.rules_fired
    assert [e.event_id.split(":")[0] for e in finding.evidence] == ["forged"]
    replay = _event_for(ledger, labels[9])
    assert replay["verdict"] == "unapproved"
    assert "single-use and was already used" in replay["verdict_reason"]

    # The pipeline still classifies a change made after all that.
    before = {e.event_id for r in ledger.records for e in r.evidence}
    await p.plant.write("oven-01", "temperature_sp", 240.0, actor="unknown")

    async def new_evidence() -> bool:
        now = await read_ledger(p.bootstrap, p.db.direct,
                                agent_topics=(TOPICS.suspect, TOPICS.authorized))
        return any(e.new_value == 240.0 for r in now.records for e in r.evidence
                   if e.event_id not in before)

    await until(new_evidence, 90, "the new change recorded", p.check_alive, 1.0)
    # (6) each process serves its own metrics, its event loop's tasks among them.
    assert (await scrape(p.metrics_port("agent"), "otwatch_agent_asyncio_tasks") or 0) > 0
    assert (await scrape(p.metrics_port("classifier"),
                         "otwatch_classifier_asyncio_tasks") or 0) > 0
    for name in ("agent", "classifier", "web"):
        assert "Traceback" not in p.log_text(name), f"{name}: {p.workdir / (name + '.log')}"


async def _equals(value: Any, want: float) -> bool:
    return bool(await value == want)


def _event_for(ledger: Ledger, label: Label) -> dict[str, Any]:
    (found,) = [ev for ev in ledger.events.values()
                if ev["controller"]["id"] == label.controller and ev["tag"]["name"] == label.tag
                and ev.get("new_value") == label.new_value and ev["verdict"] != "authorized"]
    return found
