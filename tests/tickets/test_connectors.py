"""Each connector against its loopback fake: the ticket carries the NC id and the record URL,
a second open finds the first ticket (no duplicate), and the tools' errors become the right
`TicketError` (retry or not, Retry-After kept, no secret in any message)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from detectors.tickets import (
    RemoteRejected,
    RemoteUnavailable,
    TheHiveConnector,
    WebhookConnector,
)
from detectors.tickets._base import retry_after_s
from detectors.tickets.config import Backoff
from tests.tickets.conftest import connectors, request
from tests.tickets.fake_tools import THEHIVE_KEY, ToolServer

SYSTEMS = ("webhook", "thehive", "servicenow", "jira")


@pytest.mark.parametrize("system", SYSTEMS)
async def test_open_twice_is_one_ticket_carrying_the_record(
    tool_server: ToolServer, system: str
) -> None:
    connector = connectors(tool_server.url)[system]
    try:
        first = await connector.open_ticket(request())
        again = await connector.open_ticket(request())
    finally:
        await connector.aclose()
    tools = tool_server.tools
    assert (first.remote_id, first.key, first.url) == (again.remote_id, again.key, again.url)
    assert first.remote_id
    stored = {"webhook": tools.webhooks, "thehive": tools.alerts,
              "servicenow": tools.incidents, "jira": tools.issues}[system]
    assert len(stored) == 1
    text = repr(next(iter(stored.values())))
    assert "NC-2026-000001" in text and "https://records.plant.example/records/NC-2026-000001" \
        in text


async def test_thehive_alert_fields_and_case_for_a_joint_record(tool_server: ToolServer) -> None:
    connector = connectors(tool_server.url)["thehive"]
    try:
        joint = await connector.open_ticket(request("NC-2026-000001", "joint"))
        security = await connector.open_ticket(request("NC-2026-000002", "security_only"))
    finally:
        await connector.aclose()
    alert = tool_server.tools.alerts["NC-2026-000001"]
    assert (alert["type"], alert["source"], alert["sourceRef"]) == \
        ("otwatch", "otwatch", "NC-2026-000001")
    assert alert["externalLink"] == "https://records.plant.example/records/NC-2026-000001"
    assert {o["message"]: o["data"] for o in alert["observables"]} == {
        "controller": "press-01", "tag": "ZoneTemp", "endpoint": "opc.tcp://10.0.0.5:4840",
        "user": "opcua:engineer7"}
    case = tool_server.tools.cases[joint.remote_id]
    assert alert["caseId"] == joint.remote_id and joint.key == f"#{case['number']}"
    assert security.key == "alert:NC-2026-000002" and len(tool_server.tools.cases) == 1


async def test_thehive_duplicate_400_is_success_and_a_lost_promotion_is_found(
    tool_server: ToolServer,
) -> None:
    tools = tool_server.tools
    tools.fail("thehive", 502, lost=True)  # the alert is made, the answer lost
    connector = connectors(tool_server.url)["thehive"]
    try:
        with pytest.raises(RemoteUnavailable):
            await connector.open_ticket(request())
        ticket = await connector.open_ticket(request())  # 400 "already exists", then query
    finally:
        await connector.aclose()
    assert len(tools.alerts) == 1 and len(tools.cases) == 1
    assert ticket.remote_id == tools.alerts["NC-2026-000001"]["caseId"]


@pytest.mark.parametrize("system", SYSTEMS)
async def test_a_lost_answer_then_a_retry_makes_one_ticket(
    tool_server: ToolServer, system: str
) -> None:
    tool_server.tools.fail(system, 502, lost=True)
    connector = connectors(tool_server.url)[system]
    try:
        with pytest.raises(RemoteUnavailable):
            await connector.open_ticket(request())
        await connector.open_ticket(request())
    finally:
        await connector.aclose()
    tools = tool_server.tools
    stored = {"webhook": tools.webhooks, "thehive": tools.alerts,
              "servicenow": tools.incidents, "jira": tools.issues}[system]
    assert len(stored) == 1


@pytest.mark.parametrize("system", SYSTEMS)
async def test_429_with_retry_after_and_5xx_are_retried(
    tool_server: ToolServer, system: str
) -> None:
    tool_server.tools.fail(system, 429, retry_after="7")
    tool_server.tools.fail(system, 503)
    connector = connectors(tool_server.url)[system]
    try:
        with pytest.raises(RemoteUnavailable) as limited:
            await connector.open_ticket(request())
        with pytest.raises(RemoteUnavailable) as down:
            await connector.open_ticket(request())
        assert (await connector.open_ticket(request())).remote_id
    finally:
        await connector.aclose()
    assert limited.value.retry_after == 7.0 and "HTTP 429" in str(limited.value)
    assert down.value.retry_after is None and "HTTP 503" in str(down.value)


async def test_bad_credentials_are_401_retryable_and_never_echo_the_secret(
    tool_server: ToolServer,
) -> None:
    wrong = TheHiveConnector(tool_server.url, "not-the-key-9d2e")
    hook = WebhookConnector(f"{tool_server.url}/hooks/otwatch", "whsec_" + "QUJD" * 8)
    try:
        with pytest.raises(RemoteUnavailable) as refused:
            await wrong.open_ticket(request())
        with pytest.raises(RemoteUnavailable):
            await hook.open_ticket(request())
    finally:
        await wrong.aclose()
        await hook.aclose()
    assert "HTTP 401" in str(refused.value) and "credentials" in str(refused.value)
    assert "not-the-key-9d2e" not in str(refused.value) and THEHIVE_KEY not in str(refused.value)
    assert tool_server.tools.refused == {"thehive": 1, "webhook": 1}
    assert not tool_server.tools.alerts and not tool_server.tools.webhooks


async def test_other_4xx_is_rejected_not_retried(tool_server: ToolServer) -> None:
    tool_server.tools.fail("jira", 400)
    connector = connectors(tool_server.url)["jira"]
    try:
        with pytest.raises(RemoteRejected, match="HTTP 400"):
            await connector.open_ticket(request())
    finally:
        await connector.aclose()


async def test_remote_down_is_unavailable(tool_server: ToolServer) -> None:
    await tool_server.down()
    connector = connectors(tool_server.url)["servicenow"]
    try:
        with pytest.raises(RemoteUnavailable, match="ConnectError"):
            await connector.open_ticket(request())
    finally:
        await connector.aclose()


@pytest.mark.parametrize("system", SYSTEMS)
async def test_state_reaches_the_linked_ticket(tool_server: ToolServer, system: str) -> None:
    connector = connectors(tool_server.url)[system]
    try:
        ticket = await connector.open_ticket(request())
        await connector.report_state(request(state="triage", trail_seq=9), ticket)
    finally:
        await connector.aclose()
    tools = tool_server.tools
    if system == "webhook":
        sent = tools.webhooks["otwatch-NC-2026-000001-9"]
        assert sent["type"] == "record.state_changed" and sent["data"]["state"] == "triage"
        return
    (tool, target, body), = tools.updates
    assert (tool, target) == (system, ticket.key if system == "jira" else ticket.remote_id)
    assert "triage" in repr(body)


def test_jira_remote_link_global_id_and_adf() -> None:
    from detectors.tickets.jira import global_id, issue_body
    body = issue_body(request(), project="SEC", issue_type="Task")["fields"]
    assert body["description"]["type"] == "doc" and body["description"]["version"] == 1
    assert "otwatch-NC-2026-000001" in body["labels"]
    assert global_id("NC-2026-000001") == "system=otwatch&id=NC-2026-000001"


def test_backoff_is_capped_exponential_and_waits_at_least_retry_after() -> None:
    backoff = Backoff(initial_s=1, max_s=30, retry_after_max_s=120)
    assert [backoff.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(1, retry_after=20) == 20
    assert backoff.delay(6, retry_after=5) == 30
    assert backoff.delay(1, retry_after=10_000) == 120


def test_retry_after_as_seconds_or_http_date() -> None:
    now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert retry_after_s("120") == 120.0
    assert retry_after_s("Mon, 02 Mar 2026 08:01:30 GMT", now) == 90.0
    assert retry_after_s("soon") is None and retry_after_s(None) is None
