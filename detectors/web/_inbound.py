"""``POST /api/tickets/{system}/webhook``: an incident tool reports its ticket's state and
assignee back onto the record (`detectors.tickets.inbound` checks and applies it).

The route's access is ``SIGNED_WEBHOOK``: no session or token, so the security policy lets it
through to here, where the signature is checked before the body is read as JSON or anything
touches the database. An unknown system, or one without an ``inbound_secret``, is a 404:
nothing says which systems exist.
"""

from __future__ import annotations

from aiohttp import web

from detectors.tickets import inbound
from detectors.web._api import json_response
from detectors.web._keys import PARTS


async def ticket_webhook(request: web.Request) -> web.StreamResponse:
    parts = request.app[PARTS]
    hook = parts.inbound.get(request.match_info["system"])
    if hook is None:
        raise web.HTTPNotFound()
    body = await request.read()
    report = inbound.check(hook, body, dict(request.headers))
    webhook_id = request.headers["webhook-id"]  # present: the signature covers it
    now = parts.clock()
    version = await parts.gate.run(lambda store: inbound.apply(store, hook, webhook_id, report,
                                                               now))
    return json_response({"record_id": report.record_id, "version": version}, 200)
