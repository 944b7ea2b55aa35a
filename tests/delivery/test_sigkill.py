"""SIGKILL of the agent mid-publish, then a restart: nothing lost, same event_ids, seq continues."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from agent.kafka.settings import TopicNames
from agent.spool import Spool
from simulators.broker import EmbeddedBroker
from tests.delivery.kafka_read import first_occurrences, read_topics

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
APPEND = 20_000
KILL_AFTER_SEQ = 6_000


async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.delivery.spool_agent",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )


async def kill_mid_publish(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL (by PID) once events were both published and still waiting in the spool."""
    assert proc.stdout is not None
    while line := await asyncio.wait_for(proc.stdout.readline(), 30):
        seq, depth = (int(part.split("=")[1]) for part in line.decode().split())
        if seq >= KILL_AFTER_SEQ and 0 < depth < seq:
            os.kill(proc.pid, signal.SIGKILL)
            break
    else:
        raise AssertionError("the agent finished before it could be killed mid-publish")
    assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL


async def test_sigkill_mid_publish_then_restart_loses_nothing(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    spool_path = tmp_path / "spool.db"
    first = await spawn(str(spool_path), broker.bootstrap, "--append", str(APPEND))
    try:
        await kill_mid_publish(first)
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    spool = Spool(spool_path, topics=TopicNames())
    killed_at_seq, left = spool.last_seq(), spool.depth()
    spool.close()
    assert 0 < left < killed_at_seq  # really mid-publish: some sent, some not

    second = await spawn(
        str(spool_path), broker.bootstrap, "--append", "10", "--start", str(killed_at_seq)
    )
    out, _ = await asyncio.wait_for(second.communicate(), 60)
    assert second.returncode == 0
    assert out.decode().splitlines()[-1] == f"drained seq={killed_at_seq + 10}"

    topics = TopicNames()
    total = killed_at_seq + 10
    received = await read_topics(
        broker.bootstrap, [topics.suspect, topics.authorized], until_count=total
    )
    firsts = first_occurrences(received)
    got = {r.value["event_id"]: r.value["seq"] for r in firsts}
    # event i was appended as the (i+1)-th event: same id, and seq 1..total with no gap
    assert got == {f"ev-{i:06d}": i + 1 for i in range(total)}
    per_key: dict[bytes, list[int]] = {}
    for r in firsts:
        per_key.setdefault(r.key, []).append(r.value["seq"])
    assert all(seqs == sorted(seqs) for seqs in per_key.values())
