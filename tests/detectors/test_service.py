"""The classifier process against the real broker and a real SQLite records database.

Each test starts the classifier as `python -m detectors.cli run` (as the e2e harness does) and
stops it by PID; the broker is the `broker` fixture (a fresh Tansu per test).
"""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import pytest

from simulators.broker import EmbeddedBroker
from tests.detectors.running import (
    classifier,
    create_topics,
    log_text,
    metrics_port,
    produce,
    read_topic,
    records,
    signed,
    status,
    wait_until,
    write_config,
)
from tests.support.events import make_event
from tests.support.scrape import declared, defined, scrape

pytestmark = pytest.mark.e2e
SUSPECT = "otwatch.changes.suspect"


def on_line(controller: str, line: str, **overrides: object) -> tuple[bytes, bytes]:
    event = make_event(controller={"id": controller}, line=line, **overrides)
    return signed(event)


async def test_garbage_goes_to_the_dlq_and_the_valid_event_still_makes_its_record(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    await create_topics(broker.bootstrap)
    config = write_config(tmp_path, broker.bootstrap)
    valid = make_event()
    await produce(broker.bootstrap, SUSPECT, [
        (b"plant-1/oven-01", b"{not json"),
        (b"plant-1/oven-01", b'{"schema": "otwatch.change/9", "event_id": "x"}'),
        signed(valid),
    ])
    with classifier(config) as proc:
        db = tmp_path / "records.db"
        (record,) = await asyncio.to_thread(wait_until, lambda: records(db), 30, "a record", proc)
        dead = await read_topic(broker.bootstrap, "otwatch.dlq", lambda m: len(m) >= 2)
        alerts = await read_topic(broker.bootstrap, "otwatch.alerts", lambda m: len(m) >= 1)
        lifecycle = await read_topic(broker.bootstrap, "otwatch.records", lambda m: len(m) >= 1)
        port = metrics_port(config)
        scrape = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        )
    assert dead[0]["reason"].startswith("not JSON")
    assert dead[1]["reason"].startswith("unknown schema 'otwatch.change/9'")
    assert dead[0]["value_head"] == "{not json" and dead[0]["topic"] == SUSPECT
    assert (record.classification, record.controller) == ("joint", "oven-01")
    (alert,) = alerts
    assert alert["alert_id"] == valid.event_id and alert["master_record"] == record.id
    assert alert["attack_techniques"] == ["T0836"]
    assert alert["security_ticket"] == record.security_ticket
    assert [(m["type"], m["record_id"], m["ticket_id"]) for m in lifecycle] == [
        ("opened", record.id, record.security_ticket)
    ]
    text = scrape.decode()
    assert 'otwatch_classifier_dead_letters_total{reason="not JSON"} 1.0' in text
    assert 'otwatch_classifier_events_total{classification="joint"} 1.0' in text
    assert 'otwatch_classifier_rules_fired_total{rule="JQS-1"} 1.0' in text
    assert "otwatch_classifier_consumer_lag{" in text
    assert "otwatch_classifier_processing_seconds_count 1.0" in text


def processed_events(db: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT event_id FROM processed_events")]


async def test_a_crash_between_record_and_commit_loses_nothing_and_duplicates_nothing(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    await create_topics(broker.bootstrap)
    config = write_config(tmp_path, broker.bootstrap)
    sent = [on_line(f"oven-{i:02d}", f"line-{i}") for i in range(4)]
    await produce(broker.bootstrap, SUSPECT, sent)
    db = tmp_path / "records.db"
    with classifier(config, "first", module="tests.detectors.crash_after_record") as first:
        code = await asyncio.to_thread(first.wait, 30)
    assert code == 137, log_text(config, "first")
    before = {r.id for r in records(db)}
    assert before, "the first process recorded its first batch before it died"
    with classifier(config, "second") as second:
        await asyncio.to_thread(
            wait_until, lambda: len(records(db)) == 4 and status(config, "second").get(
                "duplicates", 0) >= len(before), 30, "all four records", second)
    opened = records(db)
    assert before <= {r.id for r in opened}
    assert sorted(r.controller for r in opened) == [f"oven-{i:02d}" for i in range(4)]
    assert all(len(r.evidence) == 1 for r in opened)
    assert len(processed_events(db)) == 4


async def test_two_processes_share_the_partitions_and_open_one_record_per_incident(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    await create_topics(broker.bootstrap)
    config = write_config(tmp_path, broker.bootstrap)
    db = tmp_path / "records.db"
    with classifier(config, "one") as one, classifier(config, "two") as two:
        def both_assigned() -> bool:
            a: list[str] = status(config, "one").get("assigned") or []
            b: list[str] = status(config, "two").get("assigned") or []
            return bool(a and b) and not set(a) & set(b) and len(a) + len(b) == 4
        await asyncio.to_thread(wait_until, both_assigned, 40, "both processes assigned", one)
        controllers = [f"press-{i:02d}" for i in range(8)]
        first = [on_line(c, f"line-{c}") for c in controllers]
        again = [on_line(c, f"line-{c}", tag={"name": "speed_sp"}) for c in controllers]
        await produce(broker.bootstrap, SUSPECT, first + again + first)  # and a redelivery
        await asyncio.to_thread(
            wait_until, lambda: len(processed_events(db)) == 16 if db.exists() else False, 30,
            "every event processed", two)
        # Each process writes its status after its batch's alerts were sent, a moment after
        # the records commit the wait above saw: wait for both before judging the split.
        def counts() -> list[int]:
            return [status(config, n).get("processed", 0) for n in ("one", "two")]
        await asyncio.to_thread(wait_until, lambda: all(c > 0 for c in counts()), 30,
                                "both processes processed some of the events", one)
        assert two.poll() is None and one.poll() is None
    opened = records(db)
    assert sorted(r.controller for r in opened) == controllers
    assert all(len(r.evidence) == 2 for r in opened)
    assert "partitions assigned: ['otwatch.changes.suspect/" in log_text(config, "one")


async def test_a_seq_gap_and_a_silent_agent_open_one_data_integrity_record(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from agent.contract import Heartbeat

    await create_topics(broker.bootstrap)
    config = write_config(tmp_path, broker.bootstrap, silence_after_s=3, seq_gap_grace_s=0.5,
                          check_interval_s=0.5, start_from="earliest")
    now = datetime.now(UTC)  # data only: the classifier judges silence by its own clock
    one = make_event(seq=1, controller={"id": "oven-01"})
    two = make_event(seq=2, controller={"id": "press-01"}, line="line-2", verdict="authorized")
    four = make_event(seq=4, controller={"id": "press-02"}, line="line-3")
    await produce(broker.bootstrap, SUSPECT, [signed(e) for e in (one, four)])
    authorized = "otwatch.changes.authorized"
    await produce(broker.bootstrap, authorized, [signed(two)])
    beat = Heartbeat(agent_id="edge-01", version="t", sent_at=now, controllers_up=3,
                     controllers_total=3, spool_depth=0, last_seq=4)
    await produce(broker.bootstrap, "otwatch.agents.heartbeat", [(b"edge-01", beat.to_json())])
    db = tmp_path / "records.db"

    def integrity_record() -> list[str]:
        found = [r for r in records(db) if r.correlation_key == "integrity:edge-01"]
        return sorted(e.event_id for e in found[0].evidence) if found else []

    with classifier(config) as proc:
        ids = await asyncio.to_thread(
            wait_until, lambda: len(records(db)) == 3 and len(integrity_record()) == 2
            and integrity_record(), 30, "the seq gap and the silence on one record", proc)
    assert ids == ["seqgap:edge-01:3", f"silence:edge-01:{now.isoformat()}"]
    (rec,) = [r for r in records(db) if r.correlation_key == "integrity:edge-01"]
    assert rec.classification == "joint" and {"DI-1", "DI-2"} & set(rec.rules_fired)
    assert sorted(r.controller for r in records(db)) == ["agent:edge-01", "oven-01", "press-02"]


async def test_the_classifier_process_exports_its_own_metrics_and_no_agent_metric(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """The classifier imports only the agent's contract, Kafka and runtime plumbing: none of
    the agent's metrics is registered in it (they made the agent's alert rules fire for a
    healthy classifier)."""
    await create_topics(broker.bootstrap)
    config = write_config(tmp_path, broker.bootstrap)
    with classifier(config) as proc:
        await asyncio.to_thread(
            wait_until, lambda: status(config).get("assigned"), 40, "partitions assigned", proc)
        text = await asyncio.to_thread(scrape, metrics_port(config))
    families = declared(text)
    assert not {name for name in families if name.startswith("otwatch_agent_")}
    assert "otwatch_agent_" not in text
    assert defined("otwatch_classifier_") <= families
    assert defined("otwatch_agent_"), "the agent's metrics are found in its code"
