"""Scale-out: two classifier processes share the suspect topic's partitions, one incident still
opens one record (real subprocesses, the real broker, real PostgreSQL).

A burst across six controllers of one line is spread over four partitions, so each process sees
only part of it: neither knows which event came first, and one may see too few controllers to
recognise the burst at all. The records store decides (`detectors.records.ingest`): the burst's
record is claimed under the line's key inside the records transaction, and every part of the
burst, from either process, attaches to it. The test sends the first change to the process
that sees fewer of the presses, alone and a moment ahead of the rest: a process that recorded
it at once would open a record of its own before any other part of the burst existed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml
from aiokafka.partitioner import DefaultPartitioner

from simulators.broker import EmbeddedBroker
from tests.detectors.running import (
    classifier,
    create_topics,
    produce,
    signed,
    status,
    wait_until,
    write_config,
)
from tests.detectors.test_database_outage import pg_records, processed
from tests.support.events import make_event

pytestmark = [pytest.mark.e2e, pytest.mark.pg]
SUSPECT = "otwatch.changes.suspect"
CONTROLLERS = [f"press-{i:02d}" for i in range(1, 7)]


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def owners(config: Path) -> dict[str, str]:
    """Controller → the process whose partition its key hashes to (Kafka's default
    partitioner, as the agent's producer uses it)."""
    by_partition = {int(tp.rsplit("/", 1)[1]): name for name in ("one", "two")
                    for tp in status(config, name)["assigned"]}
    partitions = sorted(by_partition)
    return {c: by_partition[DefaultPartitioner()(f"plant-1/{c}".encode(), partitions,
                                                 partitions)] for c in CONTROLLERS}


def burst() -> list[tuple[bytes, bytes]]:
    """A setpoint changed on each of six presses of line-a, then an unknown user's program
    download on press-04: one incident."""
    setpoints = [
        make_event(controller={"id": c}, line="line-a", seq=n,
                   verdict_reason=f"no approved change record for {c}/temperature_sp")
        for n, c in enumerate(CONTROLLERS, start=1)
    ]
    download = make_event(
        controller={"id": "press-04"}, line="line-a", seq=7, actor="unknown",
        tag={"name": "program_checksum", "kind": "program", "unit": None,
             "critical_to_quality": False},
        change_kind="program_change", old_value="4b1d9e07c3a25f88", new_value="e3a0c55d19b7f402",
        verdict_reason="no approved change record for press-04/program_checksum",
    )
    return [signed(e) for e in [*setpoints, download]]


async def test_two_processes_record_a_burst_across_a_line_as_one_record(
    broker: EmbeddedBroker, tmp_path: Path, pg_dsn: str, pg_schema: str,
) -> None:
    await create_topics(broker.bootstrap)
    config = write_config(tmp_path, broker.bootstrap)
    cfg = yaml.safe_load(config.read_text())
    cfg["classifier"]["records_db"] = f"{pg_dsn}?options=-csearch_path%3D{pg_schema}"
    config.write_text(yaml.safe_dump(cfg))
    sent = burst()
    with classifier(config, "one") as one, classifier(config, "two") as two:
        def both_assigned() -> bool:
            a: list[str] = status(config, "one").get("assigned") or []
            b: list[str] = status(config, "two").get("assigned") or []
            return bool(a and b) and not set(a) & set(b) and len(a) + len(b) == 4
        await asyncio.to_thread(wait_until, both_assigned, 40, "both processes assigned", one)
        owner = owners(config)
        fewer = min(("one", "two"), key=lambda n: sum(o == n for o in owner.values()))
        first = next(n for n, c in enumerate(CONTROLLERS) if owner[c] == fewer)
        await produce(broker.bootstrap, SUSPECT, [sent[first]])
        await asyncio.sleep(2)  # ample for that process to record it, had it not held it
        rest = [m for n, m in enumerate(sent) if n != first]
        await produce(broker.bootstrap, SUSPECT, [*rest, *sent[:3]])  # and a redelivery
        await asyncio.to_thread(
            wait_until, lambda: len(processed(pg_dsn, pg_schema)) == len(sent), 60,
            "every event processed", two)
        await asyncio.to_thread(
            wait_until, lambda: sum(status(config, n).get("processed", 0)
                                    for n in ("one", "two")) >= len(sent) + 3, 30,
            "the redelivered events seen", one)
        counts = {n: status(config, n).get("processed", 0) for n in ("one", "two")}
        assert one.poll() is None and two.poll() is None
    opened = pg_records(pg_dsn, pg_schema)
    ids = processed(pg_dsn, pg_schema)
    assert len(ids) == len(set(ids)) == len(sent)
    assert len(opened) == 1, [(r.id, r.controller, r.tag, len(r.evidence)) for r in opened]
    (record,) = opened
    assert sorted(e.event_id for e in record.evidence) == sorted(ids)
    assert {e.controller for e in record.evidence} == set(CONTROLLERS)
    assert all(c > 0 for c in counts.values()), counts  # both processes took part
    # The download joined a setpoint incident: the record is the download's now.
    assert (record.controller, record.tag) == ("press-04", "program_checksum"), [
        (e.controller, e.tag, e.severity, e.classification, e.rules_fired) for e in record.evidence]
    assert record.description.startswith("program change on press-04/program_checksum")
    print(f"\nscale-out burst: {len(sent)} events (+3 redelivered) over 4 partitions, owners "
          f"{owner}, {CONTROLLERS[first]} first to process {fewer!r}; "
          f"processed per process {counts}; records: {len(opened)} ({record.id}), evidence "
          f"rows: {len(record.evidence)}, rules: {record.rules_fired}, title: "
          f"{record.description!r}")
