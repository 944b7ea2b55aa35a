"""The records database away: the classifier waits and loses nothing (issue 14, item 5).

Real processes, the real broker and the real PostgreSQL, made unavailable without disturbing
anyone else on the shared server: a DSN to a port where nothing listens (until the test opens
a TCP proxy there), and a login role of the test's own that is refused logins and has its
connections ended, then let in again. While the database is away the classifier holds what it
read and commits no offset; once it is back every event is recorded exactly once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from detectors.records import MasterRecord, open_store
from simulators.broker import EmbeddedBroker, free_port
from tests.delivery.proxy import TcpProxy
from tests.detectors.running import (
    classifier,
    committed,
    create_topics,
    log_text,
    produce,
    signed,
    wait_until,
    write_config,
)
from tests.support.events import make_event

pytestmark = [pytest.mark.e2e, pytest.mark.pg]
SUSPECT = "otwatch.changes.suspect"
GROUP = "otwatch-classifier"
DOWN = "(classifier.records_db) unavailable; holding what was read"
UP = "(classifier.records_db) available again"


def events(first: int, count: int) -> list[tuple[bytes, bytes]]:
    """One event per controller, each on its own line (no burst holds them back)."""
    made = [make_event(controller={"id": f"oven-{i:02d}"}, line=f"line-{i}", seq=i + 1)
            for i in range(first, first + count)]
    return [signed(e) for e in made]


def with_records_db(config: Path, dsn: str) -> Path:
    import yaml

    cfg = yaml.safe_load(config.read_text())
    cfg["classifier"]["records_db"] = dsn
    config.write_text(yaml.safe_dump(cfg))
    return config


def pg_records(pg_dsn: str, schema: str) -> list[MasterRecord]:
    store = open_store(pg_dsn, schema=schema)
    try:
        return store.list_records()
    except Exception:  # the classifier has not migrated the schema yet
        return []
    finally:
        store.close()


def processed(pg_dsn: str, schema: str) -> list[str]:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{schema}.processed_events",))
        if exists.fetchone() == (None,):
            return []
        rows = conn.execute(f"SELECT event_id FROM {schema}.processed_events").fetchall()
    return [r[0] for r in rows]



async def eventually(check: Callable[[], object], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def assert_recorded_once(pg_dsn: str, schema: str, count: int) -> None:
    ids = processed(pg_dsn, schema)
    assert len(ids) == len(set(ids)) == count
    opened = pg_records(pg_dsn, schema)
    assert sorted(r.controller for r in opened) == [f"oven-{i:02d}" for i in range(count)]
    assert all(len(r.evidence) == 1 for r in opened)


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture
async def proxy_port() -> AsyncIterator[tuple[int, list[TcpProxy]]]:
    """A port where nothing listens yet; the test may start a proxy to PostgreSQL there."""
    proxies: list[TcpProxy] = []
    yield free_port(), proxies
    for proxy in proxies:
        await proxy.stop()


async def test_a_database_that_is_not_there_at_start_is_waited_for_and_nothing_is_lost(
    broker: EmbeddedBroker, tmp_path: Path, pg_dsn: str, pg_schema: str,
    proxy_port: tuple[int, list[TcpProxy]],
) -> None:
    port, proxies = proxy_port
    dsn = f"postgresql://postgres@127.0.0.1:{port}/test?options=-csearch_path%3D{pg_schema}"
    await create_topics(broker.bootstrap)
    config = with_records_db(write_config(tmp_path, broker.bootstrap), dsn)
    await produce(broker.bootstrap, SUSPECT, events(0, 4))
    with classifier(config) as proc:
        await asyncio.to_thread(wait_until, lambda: DOWN in log_text(config), 60,
                                "the outage line", proc)
        assert await committed(broker.bootstrap, GROUP) == 0
        proxies.append(await TcpProxy(port, 5432).start())  # the database is there now
        await produce(broker.bootstrap, SUSPECT, events(4, 2))
        await eventually(lambda: len(processed(pg_dsn, pg_schema)) == 6, 60, "six events")
        await eventually(lambda: _equals(committed(broker.bootstrap, GROUP), 6), 30, "the commits")
        assert proc.poll() is None
    text = log_text(config)
    assert text.count(DOWN) == 1 and text.count(UP) == 1, text
    assert "Traceback" not in text
    assert_recorded_once(pg_dsn, pg_schema, 6)


async def _equals(value: object, want: int) -> bool:
    assert asyncio.iscoroutine(value)
    return bool(await value == want)


@pytest.fixture
def pg_role(pg_dsn: str) -> Iterator[str]:
    """A login role of this test's own, owning a schema of the same name (its search path)."""
    name = f"otw_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN")
        conn.execute(f"CREATE SCHEMA {name} AUTHORIZATION {name}")
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        _end_sessions(conn, name)
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        conn.execute(f"DROP ROLE IF EXISTS {name}")


def _end_sessions(conn: psycopg.Connection[object], role: str) -> None:
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                 (role,))


def set_login(pg_dsn: str, role: str, allowed: bool) -> None:
    """Let the role in, or refuse it and end its sessions (what a restart looks like to it)."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {role} {'LOGIN' if allowed else 'NOLOGIN'}")
        if not allowed:
            _end_sessions(conn, role)


async def test_a_database_outage_while_running_holds_the_batch_and_loses_nothing(
    broker: EmbeddedBroker, tmp_path: Path, pg_dsn: str, pg_role: str
) -> None:
    await create_topics(broker.bootstrap)
    dsn = f"postgresql://{pg_role}@127.0.0.1:5432/test"
    config = with_records_db(write_config(tmp_path, broker.bootstrap), dsn)
    with classifier(config) as proc:
        await produce(broker.bootstrap, SUSPECT, events(0, 4))
        await eventually(lambda: len(processed(pg_dsn, pg_role)) == 4, 60, "four events")
        await eventually(lambda: _equals(committed(broker.bootstrap, GROUP), 4), 30,
                         "their commits")
        set_login(pg_dsn, pg_role, allowed=False)
        await produce(broker.bootstrap, SUSPECT, events(4, 4))
        await asyncio.to_thread(wait_until, lambda: DOWN in log_text(config), 60,
                                "the outage line", proc)
        await asyncio.sleep(3)  # the classifier retries meanwhile
        assert await committed(broker.bootstrap, GROUP) == 4, \
            "nothing read in the outage is committed"
        assert proc.poll() is None
        set_login(pg_dsn, pg_role, allowed=True)
        await eventually(lambda: len(processed(pg_dsn, pg_role)) == 8, 60, "all eight events")
        await eventually(lambda: _equals(committed(broker.bootstrap, GROUP), 8), 30, "all commits")
    text = log_text(config)
    assert text.count(DOWN) == 1 and text.count(UP) == 1, text
    assert "Traceback" not in text
    assert_recorded_once(pg_dsn, pg_role, 8)
