"""Jira Cloud: an issue per record (description in Atlassian Document Format) with a remote
link back to the record, ``globalId`` ``system=otwatch&id=<NC id>``.

API subset used (REST v3, basic auth with an account's email and API token):

- ``GET /rest/api/3/search/jql?jql=labels = "otwatch-<NC id>"``: the lookup before create
  (every issue carries that label);
- ``POST /rest/api/3/issue``: the issue (project, issue type, summary, ADF description,
  labels);
- ``POST /rest/api/3/issue/<key>/remotelink``: the link to the record; Jira updates the link
  with the same ``globalId`` instead of adding a second one, so a retry is harmless;
- ``POST /rest/api/3/issue/<key>/comment``: the record's state (an ADF comment).
"""

from __future__ import annotations

from typing import Any

import httpx

from detectors.tickets._base import RemoteTicket, TicketRequest, call, client_for


def adf(*paragraphs: str, link: str = "") -> dict[str, Any]:
    """A small ADF document: paragraphs of text, the last one optionally a link."""
    content: list[dict[str, Any]] = [
        {"type": "paragraph", "content": [{"type": "text", "text": p}]} for p in paragraphs if p
    ]
    if link:
        content.append({"type": "paragraph", "content": [
            {"type": "text", "text": link, "marks": [{"type": "link", "attrs": {"href": link}}]}]})
    return {"type": "doc", "version": 1, "content": content}


def label(record_id: str) -> str:
    return f"otwatch-{record_id}"


def global_id(record_id: str) -> str:
    return f"system=otwatch&id={record_id}"


def issue_body(ticket: TicketRequest, *, project: str, issue_type: str) -> dict[str, Any]:
    """The issue for one record (pure)."""
    seen = ", ".join(f"{k}: {v}" for k, v in sorted(ticket.observables.items()) if v)
    return {"fields": {
        "project": {"key": project}, "issuetype": {"name": issue_type},
        "summary": f"{ticket.record_id}: {ticket.title}"[:250],
        "description": adf(ticket.description, seen,
                           f"otwatch record {ticket.record_id} ({ticket.security_ticket}, "
                           f"{ticket.classification}, severity {ticket.severity})",
                           link=ticket.record_url),
        "labels": ["otwatch", label(ticket.record_id)],
    }}


class JiraConnector:
    system = "jira"
    security_only = True

    def __init__(self, url: str, email: str, api_token: str, *, project: str,
                 issue_type: str = "Task", timeout_s: float = 10.0) -> None:
        self._base = url.rstrip("/")
        self._project, self._issue_type = project, issue_type
        self._client = client_for(self._base, auth=httpx.BasicAuth(email, api_token),
                                  headers={"Accept": "application/json"}, timeout_s=timeout_s)

    async def open_ticket(self, ticket: TicketRequest) -> RemoteTicket:
        found = (await call(self._client, self.system, "GET", "/rest/api/3/search/jql", params={
            "jql": f'labels = "{label(ticket.record_id)}"', "fields": "status",
            "maxResults": "1"})).json().get("issues", [])
        issue = found[0] if found else (await call(
            self._client, self.system, "POST", "/rest/api/3/issue",
            json=issue_body(ticket, project=self._project, issue_type=self._issue_type))).json()
        key = str(issue["key"])
        await call(self._client, self.system, "POST", f"/rest/api/3/issue/{key}/remotelink",
                   json={"globalId": global_id(ticket.record_id), "application": {
                       "type": "otwatch", "name": "otwatch"}, "object": {
                       "url": ticket.record_url, "title": ticket.record_id,
                       "summary": ticket.title[:250]}})
        state = str(issue.get("fields", {}).get("status", {}).get("name", ""))
        return RemoteTicket(remote_id=str(issue["id"]), key=key,
                            url=f"{self._base}/browse/{key}", state=state)

    async def report_state(self, ticket: TicketRequest, remote: RemoteTicket) -> None:
        await call(self._client, self.system, "POST",
                   f"/rest/api/3/issue/{remote.key}/comment",
                   json={"body": adf(f"otwatch record {ticket.record_id} is now "
                                     f"{ticket.state}.", link=ticket.record_url)})

    async def aclose(self) -> None:
        await self._client.aclose()
