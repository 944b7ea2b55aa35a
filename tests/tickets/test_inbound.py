"""The inbound ticket webhook through the real records service (aiohttp on loopback, SQLite):
a good signature changes the record as the connector's service user and names the remote
actor in the trail; a forged signature, a stale timestamp and a replay are refused and change
nothing."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from detectors.identity import create_token
from detectors.records import LinkTicket, open_store
from detectors.records.commands import Actor
from detectors.records.tables import inbound_webhooks
from detectors.tickets import inbound
from detectors.tickets.inbound import InboundReport
from detectors.tickets.signing import sign_headers, signer
from tests.records.people import enrol
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event
from tests.tickets.test_outbox import add_service_users
from tests.web.conftest import INBOUND, INBOUND_SECRET, Client, bearer, serve

URL = "/api/tickets/thehive/webhook"
REPORT = {"record_id": "NC-2026-000001", "state": "InProgress", "assignee": "j.soc",
          "remote_actor": "j.soc@acme.example", "reason": "assigned in TheHive"}


@pytest.fixture
def db(tmp_path: Path) -> str:
    target = str(tmp_path / "records.db")
    with open_store(target) as store:
        store.migrate()
        enrol(store, T0)
        add_service_users(store)
        store.record_events([(event(1), classified())], now=T0)
        store.execute(LinkTicket(record_id="NC-2026-000001", system="thehive",
                                 remote_id="~4096", key="#1", url="https://th/cases/~4096",
                                 state="New", reason="ticket opened in thehive"),
                      actor=Actor("svc-thehive"), now=T0)
    return target


@pytest.fixture
async def client(db: str) -> AsyncIterator[Client]:
    running = await serve(db)
    yield running
    await running.close()


def signed(body: dict[str, Any], *, secret: str = INBOUND_SECRET, msg_id: str = "msg_1",
           at: datetime | None = None) -> tuple[bytes, dict[str, str]]:
    raw = orjson.dumps(body)
    headers = sign_headers(signer(secret), msg_id, raw, at or datetime.now(UTC))
    return raw, {**headers, "Content-Type": "application/json"}


def thehive_row(db: str) -> dict[str, Any]:
    with open_store(db) as store:
        return {r["system"]: r for r in store.linked_tickets("NC-2026-000001")}["thehive"]


def ticket_trail(db: str) -> list[Any]:
    with open_store(db) as store:
        return [e for e in store.trail("NC-2026-000001") if e.field == "external_ticket"]


async def post(client: Client, raw: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with client.post(URL, data=raw, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_a_signed_report_changes_the_record_as_the_service_user(
    client: Client, db: str
) -> None:
    status, body = await post(client, *signed(REPORT))
    assert (status, body["record_id"]) == (200, "NC-2026-000001")
    row = thehive_row(db)
    assert (row["state"], row["assignee"], row["remote_id"]) == ("InProgress", "j.soc", "~4096")
    entry = ticket_trail(db)[-1]
    assert entry.actor == "svc-thehive"
    assert orjson.loads(entry.new or "null") == {
        "system": "thehive", "remote_id": "~4096", "key": "#1", "url": "https://th/cases/~4096",
        "state": "InProgress", "assignee": "j.soc", "reported_by": "j.soc@acme.example"}
    assert "j.soc@acme.example" in entry.reason
    with open_store(db) as store:
        assert store.verify_trail().ok


async def test_forged_stale_and_replayed_reports_are_refused(client: Client, db: str) -> None:
    forged_secret = "whsec_" + base64.b64encode(b"an attacker's guess at the secret").decode()
    transcript = []
    for name, (raw, headers) in {
        "forged": signed({**REPORT, "state": "Closed"}, secret=forged_secret, msg_id="msg_f"),
        "stale": signed({**REPORT, "state": "Closed"}, msg_id="msg_s",
                        at=datetime.now(UTC) - timedelta(minutes=6)),
        "tampered": (orjson.dumps({**REPORT, "state": "Closed"}), signed(REPORT, msg_id="m")[1]),
    }.items():
        status, body = await post(client, raw, headers)
        transcript.append(f"{name}: HTTP {status} {body}")
        assert status == 401, transcript
    print("\nINBOUND REFUSED:\n" + "\n".join(transcript))
    assert thehive_row(db)["state"] == "New" and len(ticket_trail(db)) == 1

    good = signed(REPORT, msg_id="msg_once")
    assert (await post(client, *good))[0] == 200
    status, body = await post(client, *good)
    assert status == 409 and "replay" in body["error"]
    assert len(ticket_trail(db)) == 2


async def test_a_bad_body_is_refused_and_does_not_use_the_id_up(client: Client, db: str) -> None:
    status, body = await post(client, *signed({**REPORT, "actor": "admin"}, msg_id="msg_b"))
    assert status == 400 and "actor" in body["error"]
    status, body = await post(client, *signed({**REPORT, "record_id": "NC-2026-000099"},
                                              msg_id="msg_b"))
    assert status == 404 and "NC-2026-000099" in body["error"]
    assert (await post(client, *signed(REPORT, msg_id="msg_b")))[0] == 200


async def test_an_unknown_system_is_404(client: Client) -> None:
    raw, headers = signed(REPORT)
    async with client.post("/api/tickets/jira/webhook", data=raw, headers=headers) as resp:
        assert resp.status == 404




async def test_the_record_api_shows_its_tickets_and_takes_references(
    client: Client, db: str
) -> None:
    with open_store(db) as store, store.database.write() as conn:
        _, token = create_token(conn, "qa.lee", "tests", now=T0, days=30, by="test")
    assert (await post(client, *signed(REPORT, msg_id="msg_api")))[0] == 200
    ref = {"kind": "risk_assessment", "system": "Veeva QMS", "ref_id": "RA-77",
           "url": "https://qms.example/RA-77", "reason": "risk assessed for the lots"}
    async with client.post("/api/records/NC-2026-000001/references", json=ref,
                           headers=bearer(token)) as resp:
        assert resp.status == 200, await resp.text()
    async with client.post("/api/records/NC-2026-000001/references",
                           json={**ref, "kind": "memo"}, headers=bearer(token)) as resp:
        assert resp.status == 400 and "kind" in (await resp.json())["error"]
    async with client.get("/api/records/NC-2026-000001", headers=bearer(token)) as resp:
        record = await resp.json()
    ticket, = record["linked_tickets"]
    assert {k: ticket[k] for k in ("system", "remote_id", "key", "url", "state", "assignee")} \
        == {"system": "thehive", "remote_id": "~4096", "key": "#1",
            "url": "https://th/cases/~4096", "state": "InProgress", "assignee": "j.soc"}
    assert [(r["kind"], r["ref_id"], r["added_by"]) for r in record["external_refs"]] == [
        ("risk_assessment", "RA-77", "qa.lee")]


def test_accepted_ids_are_kept_past_the_tolerance_then_dropped(db: str) -> None:
    hook = INBOUND["thehive"]
    with open_store(db) as store:
        inbound.apply(store, hook, "msg_old", InboundReport(**REPORT), T0)
        with pytest.raises(inbound.InboundRefused, match="replay"):
            inbound.apply(store, hook, "msg_old", InboundReport(**REPORT), T0 + timedelta(
                minutes=30))
        inbound.apply(store, hook, "msg_new", InboundReport(**{**REPORT, "state": "Closed"}),
                      T0 + inbound.KEEP_IDS + timedelta(seconds=1))
        with store.database.read() as conn:
            kept = conn.execute(select(inbound_webhooks.c.webhook_id)).scalars().all()
    assert kept == ["msg_new"]
