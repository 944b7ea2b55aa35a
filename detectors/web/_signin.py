"""Signing in and out of the browser UI, and checking a password again for a signature.

The sign-in form is protected against cross-site posting by a double-submit token (a
SameSite=Strict cookie that the form must repeat), since there is no session yet. A sign-in
starts a server-side session (`detectors.identity.sessions`) whose id goes into an HttpOnly,
SameSite=Strict cookie (Secure under TLS).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from typing import Any
from urllib.parse import quote

from aiohttp import web

from detectors.identity import COOKIE, Outcome, end_session, start_session
from detectors.identity.signin import reauthentication
from detectors.records import HEAD_REVISION, Reauthentication
from detectors.web._gate import StoreNotReady
from detectors.web._keys import IDENTITY, PARTS
from detectors.web._pages import sign_in_page
from detectors.web._security import source_of

#: The double-submit cookie of the sign-in form.
FORM_COOKIE = "otwatch_signin"


async def check_password(request: web.Request, typed: str, password: str,
                         purpose: str = "sign_in") -> Outcome:
    """Sign-in's three steps, the slow one (argon2id, the directory) off the store's thread."""
    parts = request.app[PARTS]
    auth, now, source = parts.authenticator, parts.clock(), source_of(request)
    attempt = await parts.gate.read(lambda conn: auth.prepare(conn, typed, now))
    loop = asyncio.get_running_loop()
    verdict = await loop.run_in_executor(None, auth.check, attempt, password)
    return await parts.gate.write(lambda conn: auth.settle(
        conn, attempt, verdict, source=source, now=now, purpose=purpose))


async def reauthenticate(request: web.Request, user_id: str, password: str) -> Reauthentication:
    """The signer's password, entered again for one signature (refusals count to the lock)."""
    outcome = await check_password(request, user_id, password, purpose="signature")
    return reauthentication(outcome, request.app[PARTS].clock())


def _next_path(value: Any) -> str:
    """Only a path on this site (never //host or a scheme): no open redirect."""
    text = str(value or "/")
    return text if text.startswith("/") and not text.startswith("//") and "\\" not in text \
        else "/"


def _form(request: web.Request, *, status: int = 200, message: str = "", username: str = "",
          next_path: str = "/", note: str = "") -> web.Response:
    token = secrets.token_urlsafe(24)
    text = sign_in_page(csrf_token=token, next_path=next_path, message=message,
                                note=note, username=username)
    response = web.Response(text=text, status=status, content_type="text/html")
    response.set_cookie(FORM_COOKIE, token, httponly=True, samesite="Strict", path="/login",
                        secure=request.app[PARTS].tls)
    return response


async def login_page(request: web.Request) -> web.Response:
    note = ""
    try:
        version = await request.app[PARTS].gate.run(lambda store: store.schema_version())
    except StoreNotReady as exc:
        note = f"The records database is not ready yet: {exc}."
    else:
        if version < HEAD_REVISION:
            note = ("The records database is not ready yet: it has no users until it is "
                    "migrated (the classifier or `otwatch-records migrate` does it).")
    return _form(request, next_path=_next_path(request.query.get("next")), note=note)


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    next_path = _next_path(form.get("next"))
    sent, expected = str(form.get("csrf_token", "")), request.cookies.get(FORM_COOKIE, "")
    if not expected or not hmac.compare_digest(sent, expected):
        return _form(request, status=403, next_path=next_path,
                     message="This sign-in form expired or came from another site; sign in "
                             "again here.")
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    try:
        outcome = await check_password(request, username, password)
    except StoreNotReady as exc:
        return _form(request, status=503, next_path=next_path, note=str(exc))
    if outcome.refusal is not None:
        return _form(request, status=401, message=f"Sign-in refused: {outcome.refusal}",
                     username=username, next_path=next_path)
    user = outcome.result()
    parts = request.app[PARTS]
    cookie, _ = await parts.gate.write(lambda conn: start_session(
        conn, user, source=source_of(request), now=parts.clock()))
    response = _see_other(next_path)
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="Strict", path="/",
                        secure=parts.tls)
    response.del_cookie(FORM_COOKIE, path="/login")
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    identity = request[IDENTITY]
    parts = request.app[PARTS]
    if identity is not None and identity.session_digest:
        digest, now, source = identity.session_digest, parts.clock(), source_of(request)
        await parts.gate.write(lambda conn: end_session(conn, digest, why="signed out",
                                                        source=source, now=now))
    response = _see_other("/login")
    response.del_cookie(COOKIE, path="/")
    return response


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def sign_in_location(request: web.Request) -> str:
    """Where a browser that must sign in first is sent (back here afterwards)."""
    return f"/login?next={quote(request.path_qs, safe='')}"
