"""Fixtures: the loopback fake tools, and each connector pointed at them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from detectors.tickets import (
    JiraConnector,
    ServiceNowConnector,
    TheHiveConnector,
    TicketConnector,
    TicketRequest,
    WebhookConnector,
)
from tests.tickets.fake_tools import (
    JIRA_EMAIL,
    JIRA_TOKEN,
    SNOW_PASSWORD,
    SNOW_USER,
    THEHIVE_KEY,
    WEBHOOK_SECRET,
    ToolServer,
)


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    """A PostgreSQL schema of its own, dropped after the test."""
    name = f"t_{uuid.uuid4().hex}"
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture
async def tool_server() -> AsyncIterator[ToolServer]:
    server = ToolServer()
    await server.start()
    yield server
    await server.close()


def connectors(url: str, *, timeout_s: float = 30.0) -> dict[str, TicketConnector]:
    """One connector per system, with the fakes' good credentials.

    The timeout is generous: the fakes answer on loopback from the test's own event loop, and
    on a loaded machine a short timeout expires on requests the fake has served or is
    serving; the retry then repeats a state report (one too many) or, for a tool that looks
    up before it creates, races the create still in flight (a duplicate ticket). An outage is
    a refused connection, which no timeout delays."""
    return {
        "webhook": WebhookConnector(f"{url}/hooks/otwatch", WEBHOOK_SECRET, timeout_s=timeout_s),
        "thehive": TheHiveConnector(url, THEHIVE_KEY, timeout_s=timeout_s),
        "servicenow": ServiceNowConnector(url, SNOW_USER, SNOW_PASSWORD, timeout_s=timeout_s),
        "jira": JiraConnector(url, JIRA_EMAIL, JIRA_TOKEN, project="SEC", timeout_s=timeout_s),
    }


def request(record_id: str = "NC-2026-000001", classification: str = "joint",
            state: str = "detected", trail_seq: int = 1) -> TicketRequest:
    return TicketRequest(
        record_id=record_id, security_ticket="SEC-2026-000001",
        record_url=f"https://records.plant.example/records/{record_id}",
        classification=classification, severity="high", state=state,
        title="Unapproved change on press-01 ZoneTemp (plant-1/line-a)",
        description="CTQ setpoint changed without approval",
        observables={"controller": "press-01", "tag": "ZoneTemp",
                     "endpoint": "opc.tcp://10.0.0.5:4840", "user": "opcua:engineer7"},
        trail_seq=trail_seq)
