"""Loopback stand-ins for TheHive 5, ServiceNow (Table API), Jira Cloud (REST v3) and a
Standard Webhooks receiver: the documented API subset each connector uses, with the errors
those tools give (401 on a bad credential, 429 with Retry-After, 5xx, TheHive's 400 "already
exists"), and an outage (the listening socket closed, then opened again on the same port).

Faults are queued per tool (`FakeTools.fail`): the next N requests get that status; the
``lost`` fault does the work and then answers 502, as when a proxy drops the answer.
"""

from __future__ import annotations

import base64
import itertools
import socket
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

THEHIVE_KEY = "thehive-api-key-3f9a"
SNOW_USER, SNOW_PASSWORD = "otwatch.int", "snow-pass-77c1"
JIRA_EMAIL, JIRA_TOKEN = "otwatch@acme.example", "jira-token-51be"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class Fault:
    status: int
    retry_after: str | None = None
    lost: bool = False


@dataclass
class FakeTools:
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # sourceRef -> alert
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)  # sys_id -> row
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> issue
    remote_links: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)  # webhook-id -> body
    updates: list[tuple[str, str, Any]] = field(default_factory=list)  # tool, target, body
    faults: dict[str, list[Fault]] = field(default_factory=lambda: defaultdict(list))
    requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def fail(self, tool: str, status: int, times: int = 1, *, retry_after: str | None = None,
             lost: bool = False) -> None:
        self.faults[tool] += [Fault(status, retry_after, lost) for _ in range(times)]

    def _fault(self, tool: str, creates: bool) -> Fault | None:
        """The next fault for this request (a lost answer waits for a request that creates)."""
        self.requests[tool] += 1
        queued = self.faults[tool]
        if not queued or (queued[0].lost and not creates):
            return None
        return queued.pop(0)

    def next_id(self) -> str:
        return f"{next(self._ids):08x}"


def _error(fault: Fault, message: str = "injected") -> web.Response:
    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
    return web.json_response({"message": message}, status=fault.status, headers=headers)


def _guard(tools: FakeTools, tool: str, request: web.Request, expected: str,
           creates: bool = False) -> tuple[web.Response | None, Fault | None]:
    """(an error to answer now, a lost-answer fault to apply after the work)."""
    if request.headers.get("Authorization") != expected:
        tools.refused[tool] += 1
        return web.json_response({"message": "Authentication failure"}, status=401), None
    fault = tools._fault(tool, creates)
    if fault is not None and not fault.lost:
        return _error(fault), None
    return None, fault


def thehive_routes(tools: FakeTools) -> list[web.RouteDef]:
    auth = f"Bearer {THEHIVE_KEY}"

    async def create_alert(request: web.Request) -> web.Response:
        err, lost = _guard(tools, "thehive", request, auth, creates=True)
        if err:
            return err
        body = await request.json()
        missing = [k for k in ("type", "source", "sourceRef", "title", "description")
                   if not body.get(k)]
        if missing:
            return web.json_response({"type": "AttributeCheckingError",
                                      "message": f"missing {missing}"}, status=400)
        if body["sourceRef"] in tools.alerts:
            return web.json_response({"type": "CreateError", "message":
                                      f"Alert {body['sourceRef']} already exists"}, status=400)
        alert = {**body, "_id": f"~{tools.next_id()}", "status": "New"}
        tools.alerts[body["sourceRef"]] = alert
        return _error(lost) if lost else web.json_response(alert, status=201)

    async def query(request: web.Request) -> web.Response:
        err, _ = _guard(tools, "thehive", request, auth)
        if err:
            return err
        body = await request.json()
        wanted = {f["_field"]: f["_value"] for f in body["query"][1]["_and"]}
        return web.json_response([a for a in tools.alerts.values()
                                  if all(a.get(k) == v for k, v in wanted.items())])

    async def promote(request: web.Request) -> web.Response:
        err, lost = _guard(tools, "thehive", request, auth, creates=True)
        if err:
            return err
        alert = next(a for a in tools.alerts.values() if a["_id"] == request.match_info["id"])
        if alert.get("caseId"):
            return web.json_response({"message": "alert already imported"}, status=400)
        case = {"_id": f"~{tools.next_id()}", "number": len(tools.cases) + 1,
                "status": "New", "title": alert["title"], "sourceRef": alert["sourceRef"]}
        tools.cases[case["_id"]] = case
        alert["caseId"] = case["_id"]
        return _error(lost) if lost else web.json_response(case, status=201)

    async def get_case(request: web.Request) -> web.Response:
        err, _ = _guard(tools, "thehive", request, auth)
        return err or web.json_response(tools.cases[request.match_info["id"]])

    async def patch(request: web.Request) -> web.Response:
        err, _ = _guard(tools, "thehive", request, auth)
        if err:
            return err
        tools.updates.append(("thehive", request.match_info["id"], await request.json()))
        return web.Response(status=204)

    return [web.post("/api/v1/alert", create_alert), web.post("/api/v1/query", query),
            web.post("/api/v1/alert/{id}/case", promote), web.get("/api/v1/case/{id}", get_case),
            web.patch("/api/v1/{kind}/{id}", patch)]


def servicenow_routes(tools: FakeTools) -> list[web.RouteDef]:
    auth = _basic(SNOW_USER, SNOW_PASSWORD)

    async def listing(request: web.Request) -> web.Response:
        err, _ = _guard(tools, "servicenow", request, auth)
        if err:
            return err
        query = request.query.get("sysparm_query", "")
        field_name, _, value = query.partition("=")
        rows = [r for r in tools.incidents.values() if r.get(field_name) == value]
        return web.json_response({"result": rows[: int(request.query.get("sysparm_limit",
                                                                         "100"))]})

    async def create(request: web.Request) -> web.Response:
        err, lost = _guard(tools, "servicenow", request, auth, creates=True)
        if err:
            return err
        body = await request.json()
        number = f"SIR{len(tools.incidents) + 1:07d}"
        row = {**body, "sys_id": tools.next_id() * 4, "number": number, "state": "10",
               "table": request.match_info["table"]}
        tools.incidents[row["sys_id"]] = row
        return _error(lost) if lost else web.json_response({"result": row}, status=201)

    async def patch(request: web.Request) -> web.Response:
        err, _ = _guard(tools, "servicenow", request, auth)
        if err:
            return err
        tools.updates.append(("servicenow", request.match_info["sys_id"], await request.json()))
        return web.json_response({"result": tools.incidents[request.match_info["sys_id"]]})

    return [web.get("/api/now/table/{table}", listing), web.post("/api/now/table/{table}", create),
            web.patch("/api/now/table/{table}/{sys_id}", patch)]


def jira_routes(tools: FakeTools) -> list[web.RouteDef]:
    auth = _basic(JIRA_EMAIL, JIRA_TOKEN)

    async def search(request: web.Request) -> web.Response:
        err, _ = _guard(tools, "jira", request, auth)
        if err:
            return err
        wanted = request.query["jql"].split('"')[1]  # labels = "<label>"
        found = [i for i in tools.issues.values() if wanted in i["fields"]["labels"]]
        return web.json_response({"issues": found})

    async def create(request: web.Request) -> web.Response:
        err, lost = _guard(tools, "jira", request, auth, creates=True)
        if err:
            return err
        fields = (await request.json())["fields"]
        if fields.get("description", {}).get("type") != "doc":
            return web.json_response({"errorMessages": ["description must be ADF"]}, status=400)
        key = f"{fields['project']['key']}-{len(tools.issues) + 1}"
        issue = {"id": str(10000 + len(tools.issues)), "key": key,
                 "fields": {**fields, "status": {"name": "To Do"}}}
        tools.issues[key] = issue
        return _error(lost) if lost else web.json_response(
            {"id": issue["id"], "key": key, "self": f"/rest/api/3/issue/{issue['id']}"},
            status=201)

    async def remote_link(request: web.Request) -> web.Response:
        err, _ = _guard(tools, "jira", request, auth)
        if err:
            return err
        body = await request.json()
        tools.remote_links[(request.match_info["key"], body["globalId"])] = body  # upsert
        return web.json_response({"id": 1}, status=201)

    async def comment(request: web.Request) -> web.Response:
        err, _ = _guard(tools, "jira", request, auth)
        if err:
            return err
        tools.updates.append(("jira", request.match_info["key"], await request.json()))
        return web.json_response({"id": "c1"}, status=201)

    return [web.get("/rest/api/3/search/jql", search), web.post("/rest/api/3/issue", create),
            web.post("/rest/api/3/issue/{key}/remotelink", remote_link),
            web.post("/rest/api/3/issue/{key}/comment", comment)]


def webhook_routes(tools: FakeTools) -> list[web.RouteDef]:
    hook = Webhook(WEBHOOK_SECRET)

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            hook.verify(body, dict(request.headers), json_parse=False)
        except WebhookVerificationError:
            tools.refused["webhook"] += 1
            return web.json_response({"message": "bad signature"}, status=401)
        fault = tools._fault("webhook", True)
        if fault is not None and not fault.lost:
            return _error(fault)
        msg_id = request.headers["webhook-id"]
        first = msg_id not in tools.webhooks  # a receiver dedupes on webhook-id
        if first:
            tools.webhooks[msg_id] = await request.json()
        if fault is not None:
            return _error(fault)
        rid = tools.webhooks[msg_id]["data"]["record_id"]
        return web.json_response({"id": f"QMS-{rid}", "key": f"DEV-{rid[-6:]}",
                                  "url": f"https://qms.example/dev/{rid}"})

    return [web.post("/hooks/otwatch", receive)]


class ToolServer:
    """All four fakes on one loopback port; `down()` closes the socket, `up()` reopens it."""

    def __init__(self) -> None:
        self.tools = FakeTools()
        app = web.Application()
        for routes in (thehive_routes, servicenow_routes, jira_routes, webhook_routes):
            app.add_routes(routes(self.tools))
        self.runner = web.AppRunner(app)
        self.port = 0
        self._site: web.TCPSite | None = None
        self._holder: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        await self.runner.setup()
        await self.up()

    async def up(self) -> None:
        self._site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        if not self.port:
            self.port = self.runner.addresses[0][1]
        self._release_port()

    async def down(self) -> None:
        """Stop listening and drop the open (keep-alive) connections: an outage.

        The port stays bound (not listening, so connecting is refused) until `up`: a free port
        could be taken meanwhile, by another process or as the local port of an outgoing
        connection (a client's own retries included), and `up` would then fail.
        """
        if self._site is not None:
            await self._site.stop()
            self._site = None
            self._hold_port()
        server = self.runner.server
        for handler in list(server.connections if server is not None else []):
            handler.force_close()

    async def close(self) -> None:
        self._release_port()
        await self.runner.cleanup()

    def _hold_port(self) -> None:
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as `up` binds it
        holder.bind(("127.0.0.1", self.port))
        self._holder = holder

    def _release_port(self) -> None:
        if self._holder is not None:
            self._holder.close()
            self._holder = None
