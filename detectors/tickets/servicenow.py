"""ServiceNow Security Incident Response: a ``sn_si_incident`` per record (or ``incident``
where SIR is not installed), its ``correlation_id`` the NC id.

API subset used (Table API, basic auth of an integration user):

- ``GET /api/now/table/<table>?sysparm_query=correlation_id=<NC id>&sysparm_limit=1``: the
  lookup before every create (the Table API has no idempotency key: a create whose answer
  was lost is found here on the next try);
- ``POST /api/now/table/<table>`` with ``short_description``, ``description``,
  ``correlation_id``, ``correlation_display`` = ``otwatch``, ``severity``;
- ``PATCH /api/now/table/<table>/<sys_id>`` with ``work_notes``: the record's state.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from detectors.tickets._base import RemoteTicket, TicketRequest, call, client_for

_SEVERITY = {"critical": "1", "high": "1", "medium": "2", "low": "3"}
_FIELDS = "sys_id,number,state,correlation_id"


def incident_body(ticket: TicketRequest) -> dict[str, Any]:
    """The incident for one record (pure)."""
    seen = ", ".join(f"{k}={v}" for k, v in sorted(ticket.observables.items()) if v)
    return {
        "short_description": f"{ticket.record_id}: {ticket.title}"[:160],
        "description": f"{ticket.description}\n\nObserved: {seen}\n\notwatch record "
                       f"{ticket.record_id} ({ticket.security_ticket}): {ticket.record_url}",
        "correlation_id": ticket.record_id, "correlation_display": "otwatch",
        "severity": _SEVERITY.get(ticket.severity, "2"),
    }


class ServiceNowConnector:
    system = "servicenow"
    security_only = True

    def __init__(self, url: str, user: str, password: str, *, table: str = "sn_si_incident",
                 timeout_s: float = 10.0) -> None:
        self._base = url.rstrip("/")
        self._table = table
        self._client = client_for(self._base, auth=httpx.BasicAuth(user, password),
                                  headers={"Accept": "application/json"}, timeout_s=timeout_s)

    def _ticket(self, row: dict[str, Any]) -> RemoteTicket:
        sys_id = str(row["sys_id"])
        return RemoteTicket(
            remote_id=sys_id, key=str(row.get("number", "")), state=str(row.get("state", "")),
            url=f"{self._base}/nav_to.do?uri={quote(f'{self._table}.do?sys_id={sys_id}')}")

    async def open_ticket(self, ticket: TicketRequest) -> RemoteTicket:
        path = f"/api/now/table/{self._table}"
        found = (await call(self._client, self.system, "GET", path, params={
            "sysparm_query": f"correlation_id={ticket.record_id}", "sysparm_limit": "1",
            "sysparm_fields": _FIELDS})).json().get("result", [])
        if found:
            return self._ticket(found[0])
        created = (await call(self._client, self.system, "POST", path,
                              params={"sysparm_fields": _FIELDS},
                              json=incident_body(ticket))).json()["result"]
        return self._ticket(created)

    async def report_state(self, ticket: TicketRequest, remote: RemoteTicket) -> None:
        await call(self._client, self.system, "PATCH",
                   f"/api/now/table/{self._table}/{remote.remote_id}",
                   json={"work_notes": f"otwatch record {ticket.record_id} is now "
                                       f"{ticket.state}: {ticket.record_url}"})

    async def aclose(self) -> None:
        await self._client.aclose()
