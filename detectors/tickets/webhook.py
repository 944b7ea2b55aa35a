"""A signed webhook (Standard Webhooks) for any QMS or ticket tool that takes one.

Each record change the outbox relays is one POST of JSON to the configured URL::

    {"type": "record.opened" | "record.state_changed", "timestamp": "...",
     "data": {"record_id": "NC-…", "security_ticket": "SEC-…" or null, "record_url": "…",
              "classification": …, "severity": …, "state": …, "title": …, "observables": {…}}}

``webhook-id`` is stable per record and event (``otwatch-<NC id>-opened``,
``otwatch-<NC id>-<trail seq>``), so a retry after a
lost answer is a duplicate the receiver drops. A receiver that opens a ticket may answer with
``{"id": …, "key": …, "url": …}``; without it the ticket's id is the NC id.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from urllib.parse import urlsplit

import orjson

from detectors.tickets._base import RemoteTicket, TicketRequest, call, client_for
from detectors.tickets.signing import sign_headers, signer


class WebhookConnector:
    system = "webhook"
    security_only = False

    def __init__(self, url: str, secret: str, *, timeout_s: float = 10.0) -> None:
        parts = urlsplit(url)
        self._path = parts.path or "/"
        if parts.query:
            self._path += f"?{parts.query}"
        self._hook = signer(secret)
        self._client = client_for(f"{parts.scheme}://{parts.netloc}", timeout_s=timeout_s)

    async def _post(self, msg_id: str, kind: str, ticket: TicketRequest) -> bytes:
        now = datetime.now(UTC)
        body = orjson.dumps({"type": kind, "timestamp": now.isoformat(), "data": asdict(ticket)})
        headers = {"content-type": "application/json",
                   **sign_headers(self._hook, msg_id, body, now)}
        response = await call(self._client, self.system, "POST", self._path, content=body,
                              headers=headers)
        return response.content

    async def open_ticket(self, ticket: TicketRequest) -> RemoteTicket:
        answer = await self._post(f"otwatch-{ticket.record_id}-opened", "record.opened", ticket)
        try:
            found = orjson.loads(answer) if answer.strip() else {}
        except orjson.JSONDecodeError:
            found = {}
        if not isinstance(found, dict):
            found = {}
        return RemoteTicket(remote_id=str(found.get("id") or ticket.record_id),
                            key=str(found.get("key") or ""), url=str(found.get("url") or ""),
                            state=str(found.get("state") or ""))

    async def report_state(self, ticket: TicketRequest, remote: RemoteTicket) -> None:
        await self._post(f"otwatch-{ticket.record_id}-{ticket.trail_seq}",
                         "record.state_changed", ticket)

    async def aclose(self) -> None:
        await self._client.aclose()
