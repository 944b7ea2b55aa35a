"""The records API and web UI as one aiohttp application.

Every endpoint, and who may call it, is in `detectors.web.routes`. Who a request is from is
decided once by the identity policy: an API token (``Authorization: Bearer otw_…``) or the
session cookie of a browser that signed in at ``/login``; never the request body.

JSON API (errors are ``{"error": "..."}`` with a fitting status; a refused request changes
nothing)::

    GET  /api/me                        who you are, your roles, your session's CSRF token
    GET  /api/records                   newest first; [] while the database does not exist yet
    GET  /api/records/{id}              the full record with evidence and ticket (404 if unknown)
    GET  /api/records/{id}/trail        the record's audit trail entries
    POST /api/records/{id}/transition   {"to", "reason", "signature"?, "expected_version"?}
    POST /api/records/{id}/signatures   {"as", "meaning", "password", "reason"?, ...}
    POST /api/records/{id}/comments     {"text", "expected_version"?}
    GET  /api/verify                    whole-store tamper check (no checkpoints)
    GET  /api/kpis                      KPIs from the audit trail
    GET  /healthz

401 no credentials (or refused ones), 403 a role that does not allow it or a missing CSRF
token, 415 a body that is not JSON (``text/plain`` from another site), 400 a bad body (one
naming an actor or roles included), 404 unknown record, 409 refused transition or stale
version, 503 database not ready.

HTML: ``/login``, ``/`` (the worklist: filters, search, sort and paging as GET parameters),
``/records/{id}`` (every section, with a form per step: ``POST /records/{id}/steps/<name>``),
``/report`` (a nonconformity reported by hand), ``/admin/users`` (admins).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from detectors.identity import Authenticator, DirectoryUnavailable, IdentitySettings, SignInRefused
from detectors.records import (
    ConcurrentUpdate,
    GuardRefused,
    InvalidUpdate,
    PermissionDenied,
    ReasonRequired,
    RecordNotFound,
    SignatureRefused,
    StoreUnavailable,
    TransitionRefused,
    UnknownActor,
    WorkflowSettings,
)
from detectors.tickets.inbound import InboundHook, InboundRefused
from detectors.web._access import (
    ROUTE_TABLE,
    AccessDenied,
    Handler,
    SignInRequired,
    UnsupportedBody,
)
from detectors.web._api import BadRequest, json_response
from detectors.web._gate import RecordsGate, StoreNotReady
from detectors.web._keys import PARTS, ServiceParts
from detectors.web._metrics import count_response
from detectors.web._pages import error_page, viewer_of
from detectors.web._security import policy, security_headers
from detectors.web._signin import sign_in_location
from detectors.web._verify import StoreCheck
from detectors.web.routes import ROUTES

log = logging.getLogger(__name__)

_STATUS: tuple[tuple[type[Exception] | tuple[type[Exception], ...], int], ...] = (
    (RecordNotFound, 404),
    ((TransitionRefused, GuardRefused, ConcurrentUpdate), 409),
    (SignInRequired, 401),
    ((PermissionDenied, UnknownActor, AccessDenied, SignInRefused), 403),
    (UnsupportedBody, 415),
    ((BadRequest, InvalidUpdate, ReasonRequired, SignatureRefused), 400),
    (InboundRefused, 400),  # its own status (401 signature, 409 replay): `_status_of`
    ((StoreNotReady, StoreUnavailable, DirectoryUnavailable), 503),
)


def _status_of(exc: Exception) -> int:
    if isinstance(exc, InboundRefused):
        return exc.status
    return next((status for kinds, status in _STATUS if isinstance(exc, kinds)), 500)


def _error_body(exc: Exception) -> dict[str, Any]:
    body: dict[str, Any] = {"error": str(exc)}
    if isinstance(exc, TransitionRefused | GuardRefused):
        body.update(current=exc.current, requested=exc.requested, missing=exc.missing)
    if isinstance(exc, ConcurrentUpdate):
        body.update(expected_version=exc.expected, current_version=exc.current)
    return body


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One boundary that turns every failure into a clear JSON (API) or HTML (UI) error."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if not _wants_json(request) or exc.status < 400:
            raise
        return json_response({"error": f"{exc.reason}: {request.method} {request.path}"},
                             exc.status)
    except Exception as exc:
        status = _status_of(exc)
        if status == 500:
            log.exception("%s %s failed", request.method, request.path)
        if _wants_json(request):
            response = json_response(_error_body(exc), status)
            if status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="otwatch"'
            return response
        if status == 401:
            raise web.HTTPSeeOther(sign_in_location(request)) from None
        return web.Response(text=error_page(status, str(exc), viewer_of(request)),
                            status=status, content_type="text/html")


def create_app(
    target: str, *, schema: str | None = None, settings: IdentitySettings | None = None,
    tls: bool = False, clock: Callable[[], datetime] | None = None,
    workflow: WorkflowSettings | None = None,
    inbound: Mapping[str, InboundHook] | None = None,
) -> web.Application:
    """The application over the records database ``target`` (SQLite path or PostgreSQL DSN).

    ``tls`` says the service is served over HTTPS (cookies are then Secure, and HSTS is
    sent); ``clock`` is for tests (session timeouts, token expiry); ``workflow`` are the
    records workflow's settings (risk matrix, escalation); ``inbound``: the ticket
    systems whose signed webhook may report back (`detectors.tickets.inbound`)."""
    settings = settings or IdentitySettings()
    app = web.Application(middlewares=[errors, policy], client_max_size=64 * 1024)
    gate = RecordsGate(target, schema=schema, workflow=workflow)
    # The whole-store tamper check on a connection of its own: pages never queue behind it.
    checked = StoreCheck(gate=RecordsGate(target, schema=schema, workflow=workflow))
    app[PARTS] = ServiceParts(gate=gate, authenticator=Authenticator(settings),
                              settings=settings, clock=clock or (lambda: datetime.now(UTC)),
                              tls=tls, inbound=dict(inbound or {}), checked=checked)

    async def close_gate(_: web.Application) -> None:
        await checked.close()
        await gate.close()

    app.on_cleanup.append(close_gate)
    app.on_response_prepare.append(security_headers)
    app.on_response_prepare.append(count_response)
    table = {}
    for route in ROUTES:
        registered = app.router.add_route(route.method, route.path, route.handler)
        table[registered] = route
    app[ROUTE_TABLE] = table
    return app
