"""`TicketOutbox`: the enabled connectors built from config, one trail relay each.

Example::

    >>> outbox = TicketOutbox.open("records.db", load(Path("config/tickets.yaml")))
    >>> await outbox.start(); ...; await outbox.stop()
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from detectors.identity.users import get_user
from detectors.records import (
    Actor,
    RecordsError,
    RecordStore,
    TrailCursor,
    TrailRelay,
    open_store,
)
from detectors.records.models import Role
from detectors.records.trail import head_of
from detectors.tickets._base import TicketConnector
from detectors.tickets.config import (
    JiraConfig,
    ServiceNowConfig,
    TheHiveConfig,
    TicketsConfig,
    WebhookConfig,
)
from detectors.tickets.jira import JiraConnector
from detectors.tickets.outbox import TicketSink, translate_for
from detectors.tickets.servicenow import ServiceNowConnector
from detectors.tickets.thehive import TheHiveConnector
from detectors.tickets.webhook import WebhookConnector


def build_connector(system: str, config: TicketsConfig) -> TicketConnector:
    """The connector for ``system``, its secrets read now (`TicketsConfigError` if missing)."""
    c = config.connectors.enabled()[system]
    key = f"connectors.{system}"
    if isinstance(c, WebhookConfig):
        return WebhookConnector(c.url, c.secret.read(f"{key}.secret").get_secret_value(),
                                timeout_s=c.timeout_s)
    if isinstance(c, TheHiveConfig):
        return TheHiveConnector(c.url, c.api_key.read(f"{key}.api_key").get_secret_value(),
                                organisation=c.organisation, alert_type=c.alert_type,
                                source=c.source, timeout_s=c.timeout_s)
    if isinstance(c, ServiceNowConfig):
        return ServiceNowConnector(c.url, c.user,
                                   c.password.read(f"{key}.password").get_secret_value(),
                                   table=c.table, timeout_s=c.timeout_s)
    assert isinstance(c, JiraConfig)
    return JiraConnector(c.url, c.email, c.api_token.read(f"{key}.api_token").get_secret_value(),
                         project=c.project, issue_type=c.issue_type, timeout_s=c.timeout_s)


def service_actor(store: RecordStore, user_id: str, system: str) -> Actor:
    """The connector's service user, refused early when it is missing or lacks its role."""
    with store.database.read() as conn:
        user = get_user(conn, user_id)
    fix = (f"add it: `otwatch-records --user <admin> users add {user_id} --name "
           f"'{system} connector' --role {Role.INTEGRATION.value}`")
    if user is None or user.disabled:
        raise RecordsError(f"the {system} connector acts as user {user_id!r}, which is "
                           f"{'missing' if user is None else 'disabled'}; {fix}")
    if Role.INTEGRATION.value not in user.roles:
        raise RecordsError(f"user {user_id!r} (the {system} connector) lacks the role "
                           f"{Role.INTEGRATION.value!r}; {fix}")
    return user.actor()


def _start_at_head(store: RecordStore, cursor: TrailCursor) -> None:
    """A connector's first start without backfill: its cursor at today's trail head."""
    if cursor.load() == 0:
        with store.database.read() as conn:
            head = head_of(conn)
        if head is not None:
            cursor.save(head[0], datetime.now(UTC))


class TicketOutbox:
    """One relay per enabled connector, all on one store (one event loop thread)."""

    def __init__(self, store: RecordStore, relays: list[TrailRelay]) -> None:
        self.store = store
        self.relays = relays

    @classmethod
    def open(cls, target: str, config: TicketsConfig, *, schema: str | None = None,
             connectors: dict[str, TicketConnector] | None = None) -> TicketOutbox:
        store = open_store(target, schema=schema)
        relays: list[TrailRelay] = []
        try:
            built = connectors or {s: build_connector(s, config)
                                   for s in config.connectors.enabled()}
            for system, connector in built.items():
                user = config.service_user(system)
                sink = TicketSink(connector, store, service_actor(store, user, system),
                                  record_url=config.record_url, backoff=config.backoff)
                cursor = TrailCursor.open(target, f"tickets.{system}", schema=schema)
                settings = config.connectors.enabled().get(system)
                if settings is not None and not settings.backfill:
                    _start_at_head(store, cursor)
                relays.append(TrailRelay(store, cursor, translate_for(connector, user), sink,
                                         name=f"tickets-{system}",
                                         interval_s=config.interval_s))
        except BaseException:
            for relay in relays:
                relay.cursor.close()
            store.close()
            raise
        return cls(store, relays)

    def sinks(self) -> list[TicketSink]:
        return [r.sink for r in self.relays]  # type: ignore[misc]

    async def start(self, on_crash: Callable[[asyncio.Task[None]], object] | None = None) -> None:
        for relay in self.relays:
            await relay.start(on_crash)

    async def stop(self, timeout_s: float = 10.0) -> None:
        await asyncio.gather(*(relay.stop(timeout_s) for relay in self.relays))
        for relay in self.relays:
            relay.cursor.close()
        self.store.close()
