"""Linked tickets in the tools security and quality teams already use, kept in step both ways.

- `TicketOutbox` (``service``): the audit trail as a transactional outbox, one trail relay
  per enabled connector (``outbox``), capped exponential backoff honouring ``Retry-After``;
- connectors: `WebhookConnector` (Standard Webhooks), `TheHiveConnector` (TheHive 5 alerts,
  cases for joint records), `ServiceNowConnector` (SIR ``sn_si_incident`` or ``incident``),
  `JiraConnector` (Jira Cloud issue and remote link);
- ``inbound``: the signed webhook through which a tool reports state and assignee back;
- ``config``: `TicketsConfig`, secrets from the environment or a file.

Errors: `TicketError` (`RemoteUnavailable`: retried; `RemoteRejected`: shown on the record)
and `TicketsConfigError`.
"""

from detectors.tickets._base import (
    RemoteRejected,
    RemoteTicket,
    RemoteUnavailable,
    TicketConnector,
    TicketError,
    TicketRequest,
)
from detectors.tickets.config import TicketsConfig, TicketsConfigError, load, parse
from detectors.tickets.jira import JiraConnector
from detectors.tickets.outbox import TicketSink, ticket_request, translate_for
from detectors.tickets.service import TicketOutbox, build_connector, service_actor
from detectors.tickets.servicenow import ServiceNowConnector
from detectors.tickets.thehive import TheHiveConnector
from detectors.tickets.webhook import WebhookConnector

__all__ = [
    "JiraConnector",
    "RemoteRejected",
    "RemoteTicket",
    "RemoteUnavailable",
    "ServiceNowConnector",
    "TheHiveConnector",
    "TicketConnector",
    "TicketError",
    "TicketOutbox",
    "TicketRequest",
    "TicketSink",
    "TicketsConfig",
    "TicketsConfigError",
    "WebhookConnector",
    "build_connector",
    "load",
    "parse",
    "service_actor",
    "ticket_request",
    "translate_for",
]
