"""The ticket outbox: the audit trail is the queue, one trail relay per enabled connector.

Why the trail: a record is opened (or changes state) and its trail entry is written in ONE
transaction, so "queue the ticket work with the record change" holds by construction; each
connector follows the trail from its own cursor (``relay_cursor`` row ``tickets.<system>``)
with the containment publisher's relay (`detectors.records.TrailRelay`).

What a connector gets (`translate_for`): an ``open`` for each new record (not for a
quality-only record in an incident tool: security tickets are for joint and security
records; such a record that security evidence escalates opens its ticket then, on its
``security_ticket`` entry), a ``state`` for each state change of a record it has a ticket
for. Entries written by the connector's own service user (the link, the inbound reports) go
nowhere.

Delivery (`TicketSink`), per message, in trail order: try; on a retryable error wait
(capped exponential backoff, at least any ``Retry-After``) and try again, writing the attempt
count and the error onto the record's ticket row so the record shows it; log once per outage
(ERROR, then DEBUG until it works again: INFO). A refused request (4xx) is written onto the
record, counted, and skipped. Never duplicated: the cursor moves only after delivery, and a
connector's `open_ticket` is idempotent (lookup before create, "already exists", a stable
webhook id), so a crash between the remote create and the link finds the ticket next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from detectors.records import (
    Actor,
    LinkTicket,
    MasterRecord,
    Outgoing,
    RecordHeader,
    RecordStore,
    TrailEntry,
)
from detectors.records.relay import Translate
from detectors.tickets import metrics
from detectors.tickets._base import (
    RemoteRejected,
    RemoteTicket,
    RemoteUnavailable,
    TicketConnector,
    TicketRequest,
)
from detectors.tickets.config import Backoff

log = logging.getLogger("detectors.tickets")


class OutboxStopped(Exception):
    """The outbox was stopped while it waited to retry (the batch goes again next start)."""


def translate_for(connector: TicketConnector, service_user: str) -> Translate:
    """The messages one trail entry makes for ``connector`` (pure)."""

    def translate(entry: TrailEntry, header: RecordHeader) -> list[Outgoing]:
        if entry.actor == service_user:
            return []
        if connector.security_only and header.classification == "quality_only":
            return []
        if entry.field == "record" and entry.old is None:
            value: dict[str, Any] = {"op": "open"}
        elif entry.field == "security_ticket" and connector.security_only:
            # A quality-only record that security evidence escalated: its incident-tool
            # ticket opens now (`open` is idempotent if the record entry already opened it).
            value = {"op": "open"}
        elif entry.field == "state" and entry.new is not None:
            value = {"op": "state", "state": orjson.loads(entry.new)}
        else:
            return []
        value |= {"record_id": entry.record_id, "trail_seq": entry.seq}
        return [Outgoing(key=entry.record_id.encode(), value=value)]

    return translate


def ticket_request(record: MasterRecord, url: str, *, state: str | None = None,
                   trail_seq: int = 0) -> TicketRequest:
    """What a connector is told about one record (from the record as stored)."""
    raw = record.evidence[0].raw if record.evidence else {}
    controller = raw.get("controller") if isinstance(raw.get("controller"), dict) else {}
    observables = {"controller": record.controller, "tag": record.tag,
                   "endpoint": str((controller or {}).get("endpoint") or ""),
                   "user": str(raw.get("actor") or "")}
    return TicketRequest(
        record_id=record.id, security_ticket=record.security_ticket, record_url=url,
        classification=record.classification, severity=record.severity.value,
        state=state or record.state.value,
        title=f"Unapproved change on {record.controller} {record.tag} ({record.site}/"
              f"{record.line})",
        description=record.description, observables=observables, trail_seq=trail_seq)


class TicketSink:
    """Delivers one connector's messages (a `detectors.records.relay.Sink`)."""

    failures: tuple[type[BaseException], ...] = (RemoteUnavailable, OutboxStopped)

    def __init__(self, connector: TicketConnector, store: RecordStore, actor: Actor, *,
                 record_url: Any, backoff: Backoff) -> None:
        self.connector = connector
        self.system = connector.system
        self.store = store
        self.actor = actor
        self.record_url = record_url
        self.backoff = backoff
        self.failing = False
        self._stop = asyncio.Event()

    async def open(self, stop: asyncio.Event) -> bool:
        self._stop = stop
        return not stop.is_set()

    async def send(self, messages: Sequence[Outgoing]) -> None:
        for message in messages:
            await self._deliver(message.value)

    async def close(self) -> None:
        await self.connector.aclose()

    async def _deliver(self, msg: dict[str, Any]) -> None:
        attempt = 0
        while True:
            try:
                await self._once(msg)
            except RemoteRejected as exc:
                self._note(msg, str(exc), attempt + 1)
                metrics.REJECTED.labels(self.system).inc()
                log.warning("%s: %s refused for record %s: %s", self.system, msg["op"],
                            msg["record_id"], exc)
                return
            except RemoteUnavailable as exc:
                attempt += 1
                await self._wait_to_retry(msg, exc, attempt)
                continue
            self._recovered()
            return

    async def _wait_to_retry(self, msg: dict[str, Any], exc: RemoteUnavailable,
                             attempt: int) -> None:
        metrics.RETRIES.labels(self.system).inc()
        metrics.FAILING.labels(self.system).set(1)
        delay = self.backoff.delay(attempt, exc.retry_after)
        if not self.failing:
            log.error("%s: cannot deliver tickets (%s); retrying with backoff", self.system, exc)
        else:
            log.debug("%s: try %d failed (%s); next in %.1f s", self.system, attempt, exc, delay)
        self.failing = True
        self._note(msg, str(exc), attempt)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stop.wait()
        if self._stop.is_set():
            raise OutboxStopped(f"{self.system}: stopped while retrying")

    def _recovered(self) -> None:
        if self.failing:
            log.info("%s: delivering tickets again", self.system)
        self.failing = False
        metrics.FAILING.labels(self.system).set(0)

    def _note(self, msg: dict[str, Any], error: str, attempts: int) -> None:
        self.store.note_delivery(msg["record_id"], self.system, error=error[:500],
                                 attempts=attempts, now=datetime.now(UTC))

    async def _once(self, msg: dict[str, Any]) -> None:
        rid = msg["record_id"]
        linked = {row["system"]: row for row in self.store.linked_tickets(rid)}.get(self.system)
        record = self.store.get_record(rid)
        request = ticket_request(record, self.record_url(rid), state=msg.get("state"),
                                 trail_seq=int(msg["trail_seq"]))
        if msg["op"] == "open":
            if linked is not None and linked["remote_id"]:
                return  # linked before (a batch sent again after a crash)
            remote = await self.connector.open_ticket(request)
            self.store.execute(LinkTicket(
                record_id=rid, system=self.system, remote_id=remote.remote_id, key=remote.key,
                url=remote.url, state=remote.state,
                reason=f"ticket opened in {self.system} for {rid}"),
                actor=self.actor, now=datetime.now(UTC))
        elif linked is not None and linked["remote_id"]:
            await self.connector.report_state(request, RemoteTicket(
                remote_id=linked["remote_id"], key=linked["key"], url=linked["url"]))
        else:
            return
        metrics.DELIVERED.labels(self.system, msg["op"]).inc()
