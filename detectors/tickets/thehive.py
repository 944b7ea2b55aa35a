"""TheHive 5: an alert per record, promoted to a case when the record is joint.

API subset used (``Authorization: Bearer <API key>``, optional ``X-Organisation``):

- ``POST /api/v1/alert`` with ``type``, ``source``, ``sourceRef`` (= the NC id: TheHive keeps
  (type, source, sourceRef) unique), ``title``, ``description``, ``severity`` (1-4), ``tags``,
  ``observables`` (controller, endpoint, tag, user; data type ``other``) and
  ``externalLink`` (the record's URL); a 400 "already exists" means an earlier try got through:
  the alert is then looked up;
- ``POST /api/v1/query`` ``listAlert`` filtered on ``sourceRef``: the lookup;
- ``POST /api/v1/alert/{id}/case``: promote to a case (a joint record); an alert already
  promoted carries its ``caseId``;
- ``PATCH /api/v1/alert/{id}`` or ``/api/v1/case/{id}``: the record's state as a tag.
"""

from __future__ import annotations

from typing import Any

from detectors.tickets._base import (
    RemoteRejected,
    RemoteTicket,
    TicketRequest,
    call,
    client_for,
)

_SEVERITY = {"low": 1, "medium": 2, "high": 3, "critical": 4}


def alert_body(ticket: TicketRequest, *, alert_type: str, source: str) -> dict[str, Any]:
    """The alert TheHive gets for one record (pure: tested without a server)."""
    observables = [
        {"dataType": "other", "data": value,
         "message": name, "tags": [f"otwatch:{name}"]}
        for name, value in sorted(ticket.observables.items()) if value
    ]
    return {
        "type": alert_type, "source": source, "sourceRef": ticket.record_id,
        "title": ticket.title, "description": _description(ticket),
        "severity": _SEVERITY.get(ticket.severity, 2),
        "tags": ["otwatch", f"otwatch:{ticket.classification}",
                 *([ticket.security_ticket] if ticket.security_ticket else [])],
        "observables": observables, "externalLink": ticket.record_url,
    }


def _description(ticket: TicketRequest) -> str:
    return (f"{ticket.description}\n\notwatch record {ticket.record_id} "
            f"({ticket.security_ticket}): {ticket.record_url}")


class TheHiveConnector:
    system = "thehive"
    security_only = True

    def __init__(self, url: str, api_key: str, *, organisation: str = "",
                 alert_type: str = "otwatch", source: str = "otwatch",
                 timeout_s: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"}
        if organisation:
            headers["X-Organisation"] = organisation
        self._base = url.rstrip("/")
        self._type, self._source = alert_type, source
        self._client = client_for(self._base, headers=headers, timeout_s=timeout_s)

    async def open_ticket(self, ticket: TicketRequest) -> RemoteTicket:
        body = alert_body(ticket, alert_type=self._type, source=self._source)
        try:
            alert = (await call(self._client, self.system, "POST", "/api/v1/alert",
                                json=body)).json()
        except RemoteRejected as exc:
            if "already exists" not in str(exc).lower():
                raise
            alert = await self._find_alert(ticket.record_id)
        if ticket.joint:
            return await self._case_for(alert)
        return RemoteTicket(remote_id=str(alert["_id"]), key=f"alert:{ticket.record_id}",
                            url=f"{self._base}/alerts/{alert['_id']}/details",
                            state=str(alert.get("status", "")))

    async def _find_alert(self, source_ref: str) -> dict[str, Any]:
        query = {"query": [{"_name": "listAlert"}, {"_name": "filter", "_and": [
            {"_field": "sourceRef", "_value": source_ref},
            {"_field": "source", "_value": self._source},
            {"_field": "type", "_value": self._type}]}]}
        found = (await call(self._client, self.system, "POST", "/api/v1/query",
                            json=query)).json()
        if not found:
            raise RemoteRejected(f"thehive: alert {source_ref} 'already exists' but the query "
                                 "does not find it (check the API key's organisation)")
        return dict(found[0])

    async def _case_for(self, alert: dict[str, Any]) -> RemoteTicket:
        case_id = alert.get("caseId")
        if case_id:
            case = (await call(self._client, self.system, "GET",
                               f"/api/v1/case/{case_id}")).json()
        else:
            case = (await call(self._client, self.system, "POST",
                               f"/api/v1/alert/{alert['_id']}/case", json={})).json()
        return RemoteTicket(remote_id=str(case["_id"]), key=f"#{case.get('number', '')}",
                            url=f"{self._base}/cases/{case['_id']}/details",
                            state=str(case.get("status", "")))

    async def report_state(self, ticket: TicketRequest, remote: RemoteTicket) -> None:
        kind = "case" if remote.key.startswith("#") else "alert"
        await call(self._client, self.system, "PATCH", f"/api/v1/{kind}/{remote.remote_id}",
                   json={"addTags": [f"otwatch:state={ticket.state}"]})

    async def aclose(self) -> None:
        await self._client.aclose()
