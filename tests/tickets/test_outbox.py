"""The ticket outbox end to end on a real records database (SQLite) and the loopback fakes:
a burst of records while every tool is down, then an outage's end with lost answers on top;
afterwards every ticket exists exactly once and every record shows each of its tickets."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from detectors.classification import ClassKind
from detectors.identity import add_user
from detectors.records import RecordStore, State, Transition, open_store
from detectors.tickets import TicketOutbox, parse
from detectors.tickets.metrics import RETRIES
from tests.records.people import QA, enrol
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event
from tests.tickets.conftest import connectors
from tests.tickets.fake_tools import ToolServer

pytestmark = pytest.mark.integration

SYSTEMS = ("webhook", "thehive", "servicenow", "jira")
KINDS = (ClassKind.JOINT, ClassKind.SECURITY_ONLY, ClassKind.QUALITY_ONLY)


def add_service_users(store: RecordStore) -> None:
    with store.database.write() as conn:
        for system in SYSTEMS:
            add_user(conn, f"svc-{system}", f"{system} connector", ["integration"],
                     password_hash=None, by="test", now=T0)


@pytest.fixture
def records_db(tmp_path: Path) -> Iterator[tuple[str, RecordStore]]:
    yield from _records_db(str(tmp_path / "records.db"), None)


@pytest.fixture
def records_pg(pg_dsn: str, pg_schema: str) -> Iterator[tuple[str, RecordStore]]:
    yield from _records_db(pg_dsn, pg_schema)


def _records_db(target: str, schema: str | None) -> Iterator[tuple[str, RecordStore]]:
    store = open_store(target, schema=schema)
    store.migrate()
    enrol(store, T0)
    add_service_users(store)
    yield target, store
    store.close()


def open_records(store: RecordStore, first: int, count: int) -> list[str]:
    """``count`` new records, kinds in turn (joint, security-only, quality-only)."""
    ids = []
    for n in range(first, first + count):
        kind = KINDS[n % len(KINDS)]
        outcome, = store.record_events(
            [(event(n, controller=f"press-{n:02d}"), classified(kind=kind, key=f"k{n}"))],
            now=T0)
        assert outcome.record_id is not None
        ids.append(outcome.record_id)
    return ids


CONFIG = {"records_url": "https://records.plant.example", "interval_s": 0.05,
          "backoff": {"initial_s": 0.05, "max_s": 0.4}}


@pytest.fixture
async def outbox(records_db: tuple[str, RecordStore], tool_server: ToolServer
                 ) -> AsyncIterator[TicketOutbox]:
    target, _ = records_db
    box = TicketOutbox.open(target, parse(CONFIG),
                            connectors=connectors(tool_server.url))
    yield box
    await box.stop()


async def until(check: object, timeout_s: float = 300.0) -> None:
    """Poll ``check`` until true; the bound only ends a hung test (a loaded machine is slow)."""
    async with asyncio.timeout(timeout_s):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.05)


async def passed_the_trail(outbox: TicketOutbox, store: RecordStore) -> None:
    """Every relay has delivered up to the trail's head as of now."""
    head = max(e.seq for e in store.trail())
    await until(lambda: all(r.status.cursor >= head for r in outbox.relays))


def retries() -> dict[str, float]:
    return {s: RETRIES.labels(s)._value.get() for s in SYSTEMS}


def expected_systems(store: RecordStore, rid: str) -> set[str]:
    quality_only = store.get_record(rid).classification == "quality_only"
    return {"webhook"} if quality_only else set(SYSTEMS)


def linked(store: RecordStore, rid: str) -> dict[str, dict[str, object]]:
    return {row["system"]: row for row in store.linked_tickets(rid) if row["remote_id"]}


def all_linked(store: RecordStore, ids: list[str]) -> Callable[[], bool]:
    """A cheap poll (it shares the event loop with the outbox: on a loaded machine, asking
    for every record each time took ~40% of it): a record linked to each of its systems
    is not asked again."""
    pending = {rid: expected_systems(store, rid) for rid in ids}

    def check() -> bool:
        for rid, systems in list(pending.items()):
            if linked(store, rid).keys() != systems:
                return False
            del pending[rid]
        return True

    return check


async def test_an_outage_during_a_burst_leaves_one_ticket_each_and_every_record_linked(
    records_db: tuple[str, RecordStore], tool_server: ToolServer, outbox: TicketOutbox,
) -> None:
    await outage_during_a_burst(records_db[1], tool_server, outbox)


@pytest.mark.pg
async def test_the_same_outage_on_postgresql(
    records_pg: tuple[str, RecordStore], pg_schema: str, tool_server: ToolServer,
) -> None:
    target, store = records_pg
    box = TicketOutbox.open(target, parse(CONFIG), schema=pg_schema,
                            connectors=connectors(tool_server.url))
    try:
        await outage_during_a_burst(store, tool_server, box)
    finally:
        await box.stop()


async def outage_during_a_burst(store: RecordStore, tool_server: ToolServer,
                                outbox: TicketOutbox) -> None:
    tools = tool_server.tools
    before = retries()
    await tool_server.down()
    await outbox.start()
    ids = open_records(store, 1, 12)
    store.execute(Transition(record_id=ids[0], reason="triaged", to=State.TRIAGE), actor=QA,
                  now=T0)
    await until(lambda: all(s.failing for s in outbox.sinks()))
    ids += open_records(store, 13, 18)  # more of the burst while the tools stay down
    await until(lambda: min(v - before[k] for k, v in retries().items()) >= 5)
    failing = {row["system"]: row for row in store.linked_tickets(ids[0])}
    assert all(failing[s]["attempts"] and "ConnectError" in str(failing[s]["last_error"])
               for s in SYSTEMS)
    for system in SYSTEMS:  # the first create after the outage is made but its answer lost
        tools.fail(system, 502, lost=True)
    await tool_server.up()
    await until(all_linked(store, ids))
    await until(lambda: any(u[0] == "thehive" for u in tools.updates))

    security = [rid for rid in ids if expected_systems(store, rid) == set(SYSTEMS)]
    assert sorted(tools.alerts) == sorted(security)  # sourceRef = NC id, once each
    assert sorted(r["correlation_id"] for r in tools.incidents.values()) == sorted(security)
    labels = Counter(lbl for i in tools.issues.values() for lbl in i["fields"]["labels"])
    assert all(labels[f"otwatch-{rid}"] == 1 for rid in security) and len(tools.issues) == \
        len(security)
    assert sorted(b["data"]["record_id"] for b in tools.webhooks.values()
                  if b["type"] == "record.opened") == sorted(ids)
    assert len(tools.remote_links) == len(security)
    for rid in ids:
        for system, row in linked(store, rid).items():
            assert row["url"] and row["last_error"] == "", (rid, system, row)
    assert [body for tool, _, body in tools.updates if tool == "thehive"] == \
        [{"addTags": ["otwatch:state=triage"]}]
    trail = [e for e in store.trail() if e.field == "external_ticket"]
    assert Counter(e.record_id for e in trail) == Counter(
        {rid: len(expected_systems(store, rid)) for rid in ids})
    assert store.verify_trail().ok
    after = retries()
    opened = sum(1 for b in tools.webhooks.values() if b["type"] == "record.opened")
    print(f"\nOUTAGE: records={len(ids)} security_records={len(security)} "
          f"tickets: webhook={opened} "
          f"thehive_alerts={len(tools.alerts)} thehive_cases={len(tools.cases)} "
          f"servicenow={len(tools.incidents)} jira={len(tools.issues)} "
          f"retries={ {s: int(after[s] - before[s]) for s in SYSTEMS} } "
          f"requests={dict(tools.requests)}")


async def test_a_quality_only_record_gets_no_security_ticket(
    records_db: tuple[str, RecordStore], tool_server: ToolServer, outbox: TicketOutbox,
) -> None:
    _, store = records_db
    rid, = open_records(store, 2, 1)  # 2 % 3: quality-only
    assert store.get_record(rid).classification == "quality_only"
    await outbox.start()
    await until(lambda: "webhook" in linked(store, rid))
    await passed_the_trail(outbox, store)  # the incident-tool relays have seen the entry
    assert not tool_server.tools.alerts and not tool_server.tools.incidents
    assert not tool_server.tools.issues
    assert linked(store, rid).keys() == {"webhook"}
    assert linked(store, rid)["webhook"]["key"] == f"DEV-{rid[-6:]}"
    assert store.get_record(rid).security_ticket is None


async def test_security_evidence_on_a_quality_record_opens_its_incident_tickets_then(
    records_db: tuple[str, RecordStore], tool_server: ToolServer, outbox: TicketOutbox,
) -> None:
    _, store = records_db
    rid, = open_records(store, 2, 1)  # quality-only: the webhook's ticket only
    await outbox.start()
    await until(lambda: "webhook" in linked(store, rid))
    await passed_the_trail(outbox, store)  # the incident-tool relays saw the opening entry
    assert not tool_server.tools.alerts
    outcome, = store.record_events(
        [(event(9, controller="press-02", minutes=1),
          classified(kind=ClassKind.SECURITY_ONLY, key="k2"))], now=T0)
    assert outcome.record_id == rid and outcome.ticket_id is not None
    await until(lambda: linked(store, rid).keys() == set(SYSTEMS))
    await passed_the_trail(outbox, store)  # a second open, had one been sent, has landed
    tools = tool_server.tools
    assert (len(tools.alerts), len(tools.incidents), len(tools.issues)) == (1, 1, 1)
    opened = [b["data"]["record_id"] for b in tools.webhooks.values()
              if b["type"] == "record.opened"]
    assert opened == [rid]
    (alert,) = tools.alerts.values()
    assert outcome.ticket_id in alert["tags"]


async def test_without_backfill_a_new_connector_starts_at_the_trail_head(
    records_db: tuple[str, RecordStore], tool_server: ToolServer,
) -> None:
    target, store = records_db
    old = open_records(store, 1, 1)  # security-only, before the connector is enabled
    config = parse({**CONFIG, "connectors": {"jira": {
        "url": tool_server.url, "email": "x", "api_token": {"env": "UNUSED"}, "project": "SEC",
        "backfill": False}}})
    box = TicketOutbox.open(target, config, connectors={
        "jira": connectors(tool_server.url)["jira"]})
    try:
        await box.start()
        new = open_records(store, 4, 1)  # 4 % 3: security-only
        await until(lambda: "jira" in linked(store, new[0]))
    finally:
        await box.stop()
    assert "jira" not in linked(store, old[0])
    assert [i["fields"]["labels"][1] for i in tool_server.tools.issues.values()] == [
        f"otwatch-{new[0]}"]


async def test_a_refused_request_shows_on_the_record_and_does_not_block_the_next(
    records_db: tuple[str, RecordStore],
    tool_server: ToolServer, outbox: TicketOutbox,
) -> None:
    _, store = records_db
    tool_server.tools.fail("jira", 400)
    first, _, joint = open_records(store, 1, 3)  # security-only, quality-only, joint
    await outbox.start()
    await until(lambda: "jira" in linked(store, joint))
    row = {r["system"]: r for r in store.linked_tickets(first)}["jira"]
    assert row["remote_id"] == "" and "HTTP 400" in str(row["last_error"])
