"""The inbound webhook: an incident tool reports its ticket's state and assignee back onto the
record (``POST /api/tickets/{system}/webhook`` on the records service).

Authentication is the Standard Webhooks signature with the connector's ``inbound_secret``:
the body must be signed (HMAC-SHA256 over ``id.timestamp.body``), the timestamp within five
minutes, and the ``webhook-id`` new (kept in ``inbound_webhooks`` in the same transaction as
the change, so a replay is refused and a refused change does not use the id up). The change
is then made as the connector's service user, an audited `ReportTicketState` naming the
remote actor. Body (JSON, unknown fields refused)::

    {"record_id": "NC-2026-000001", "state": "In Progress", "assignee": "j.soc",
     "remote_actor": "j.soc@acme.example", "reason": "assigned in TheHive"}
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, insert, select
from standardwebhooks.webhooks import Webhook

from detectors.identity.users import get_user
from detectors.records import Actor, RecordStore, ReportTicketState
from detectors.records.tables import inbound_webhooks
from detectors.records.trail import iso
from detectors.records.workflow import execute
from detectors.tickets.config import TicketsConfig
from detectors.tickets.signing import SignatureRefused, signer, verify

#: How long accepted webhook ids are kept (well past the five-minute timestamp tolerance).
KEEP_IDS = timedelta(hours=1)


class InboundRefused(Exception):
    """An inbound webhook that is refused (401: signature; 409: replay; 400: body)."""

    status = 400


class InboundReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    record_id: str = Field(min_length=1, max_length=64)
    state: str | None = Field(default=None, max_length=120)
    assignee: str | None = Field(default=None, max_length=200)
    remote_actor: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=500)


@dataclass(frozen=True)
class InboundHook:
    system: str
    verifier: Webhook
    service_user: str


def inbound_hooks(config: TicketsConfig) -> dict[str, InboundHook]:
    """The systems with an ``inbound_secret``, by name (their secrets read now)."""
    found = {}
    for system, c in config.connectors.enabled().items():
        if c.inbound_secret is not None:
            secret = c.inbound_secret.read(f"connectors.{system}.inbound_secret")
            found[system] = InboundHook(system, signer(secret.get_secret_value()),
                                        config.service_user(system))
    return found


def check(hook: InboundHook, body: bytes, headers: dict[str, str]) -> InboundReport:
    """Signature, then body; raises `InboundRefused` (nothing is written)."""
    try:
        verify(hook.verifier, body, headers)
    except SignatureRefused as exc:
        refused = InboundRefused(f"{hook.system} webhook refused: {exc}")
        refused.status = 401
        raise refused from None
    try:
        return InboundReport.model_validate(orjson.loads(body))
    except orjson.JSONDecodeError as exc:
        raise InboundRefused(f"{hook.system} webhook body is not JSON: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                             for e in exc.errors())
        raise InboundRefused(f"{hook.system} webhook body: {problems} (fields: "
                             f"{', '.join(InboundReport.model_fields)})") from None


def apply(store: RecordStore, hook: InboundHook, webhook_id: str, report: InboundReport,
          now: datetime) -> int:
    """Record the id and make the change in one transaction; the record's new version."""
    db = store.database
    with db.write() as conn:
        db.lock_trail_head()
        seen = conn.execute(select(inbound_webhooks.c.webhook_id).where(
            inbound_webhooks.c.webhook_id == webhook_id)).first()
        if seen is not None:
            replay = InboundRefused(f"{hook.system} webhook {webhook_id!r} was received "
                                    "before: a replay is refused")
            replay.status = 409
            raise replay
        conn.execute(insert(inbound_webhooks).values(webhook_id=webhook_id, system=hook.system,
                                                     received_at=iso(now)))
        # An id older than the signature's tolerance can only come back with a stale
        # timestamp, which the signature check refuses: it need not be kept.
        conn.execute(delete(inbound_webhooks).where(
            inbound_webhooks.c.received_at < iso(now - KEEP_IDS)))
        user = get_user(conn, hook.service_user)
        actor = user.actor() if user is not None else Actor(hook.service_user)
        record = execute(conn, ReportTicketState(
            record_id=report.record_id, system=hook.system, state=report.state,
            assignee=report.assignee, reported_by=report.remote_actor,
            reason=report.reason or f"{hook.system} reports a change"), actor=actor, now=now)
    return record.version
