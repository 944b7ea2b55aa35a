"""The records service's security, as code: who the request is from (once, by the identity
policy), whether their roles allow the route (the one permission table), CSRF on every
state-changing request made with the session cookie, the body type a route takes, and the
security headers of every response.

Refusals are exceptions the error middleware answers: `SignInRequired` (401, or a redirect
to the sign-in page for a browser), `AccessDenied` (403), `UnsupportedBody` (415).
"""

from __future__ import annotations

import hmac

from aiohttp import web

from detectors.identity import COOKIE, SESSION, Identity, IdentityCheck, identify
from detectors.records.permissions import Permission, allows
from detectors.web._access import (
    FORM,
    JSON,
    PUBLIC,
    SIGNED_WEBHOOK,
    UPLOAD,
    AccessDenied,
    Handler,
    Route,
    SignInRequired,
    UnsupportedBody,
    route_of,
)
from detectors.web._gate import StoreNotReady
from detectors.web._keys import IDENTITY, PARTS, REFUSED

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
_BODY_TYPES = {JSON: "application/json", FORM: "application/x-www-form-urlencoded",
               UPLOAD: "multipart/form-data"}


@web.middleware
async def policy(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Identity, permission, CSRF and body type, before any handler runs."""
    route = route_of(request)
    request[IDENTITY] = None
    request[REFUSED] = ""
    # A signed webhook (an incident tool reporting back) has no session, so no CSRF token and
    # no cookie a browser could send for it: its HMAC signature over the body, a fresh
    # timestamp and a new webhook-id are its authentication, checked by its handler before
    # anything is read or written, and it acts only as its connector's service user.
    if route is None or route.access in (PUBLIC, SIGNED_WEBHOOK):
        if request.method not in SAFE_METHODS and route is not None:
            check_body_type(request, route)
        return await handler(request)
    found = await decide(request)
    if found.identity is None:
        raise SignInRequired(found.refused or "sign in first (a browser session, or an API "
                             "token in 'Authorization: Bearer …')")
    identity = request[IDENTITY] = found.identity
    if isinstance(route.access, Permission) and not allows(identity.user.roles, route.access):
        raise AccessDenied(
            f"{identity.user.user_id!r} ({', '.join(sorted(identity.user.roles)) or 'no role'})"
            f" may not {route.access}")
    if request.method not in SAFE_METHODS:
        if identity.via == SESSION:
            await check_csrf(request, identity, route)
        check_body_type(request, route)
    return await handler(request)


async def decide(request: web.Request) -> IdentityCheck:
    """Who the request is from, by the identity policy (never from the body)."""
    parts = request.app[PARTS]
    now = parts.clock()
    authorization = request.headers.get("Authorization")
    cookie = request.cookies.get(COOKIE)
    if not authorization and not cookie:
        return IdentityCheck(None)
    activity = request.query.get("auto") != "1"
    try:
        found = await parts.gate.read(lambda conn: identify(
            conn, authorization=authorization, cookie=cookie, source=source_of(request),
            now=now, settings=parts.settings, activity=activity))
    except StoreNotReady:
        return IdentityCheck(None, "the records database is not ready yet; nobody can sign in")
    if found.after is not None:
        await parts.gate.write(found.after)
    return found


async def check_csrf(request: web.Request, identity: Identity, route: Route) -> None:
    """The session's CSRF token must come back: header, or the form's ``csrf_token``."""
    sent = request.headers.get(CSRF_HEADER)
    forms = (_BODY_TYPES[FORM], _BODY_TYPES[UPLOAD])
    if sent is None and route.body in (FORM, UPLOAD) and request.content_type in forms:
        sent = str((await request.post()).get("csrf_token", ""))
    if not sent or not hmac.compare_digest(sent, identity.csrf_token):
        raise AccessDenied(
            "CSRF token missing or wrong: a state-changing request made with the session "
            f"cookie must carry the session's token ({CSRF_HEADER} header or csrf_token form "
            "field; GET /api/me shows it); a request from another site has none")


def check_body_type(request: web.Request, route: Route) -> None:
    wanted = _BODY_TYPES.get(route.body)
    if wanted is not None and request.content_type != wanted:
        raise UnsupportedBody(
            f"{request.method} {request.path} takes {wanted}, not "
            f"{request.content_type or 'a body without a content type'}")


def source_of(request: web.Request) -> str:
    """The peer address (a proxy's X-Forwarded-For is not trusted: anyone can send one)."""
    return request.remote or "unknown"


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every response: CSP without inline script, no framing, no sniffing, no referrer, no
    caching of record data, HSTS under TLS, and no server version banner."""
    headers = response.headers
    headers["Server"] = "otwatch"
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers.setdefault("Cache-Control", "no-store")
    if request.app[PARTS].tls:
        headers["Strict-Transport-Security"] = "max-age=31536000"
