"""The security policy: who is making a request, decided once per request from what the
request carries, never from its body (Warehouse's ``security_policy`` is the model).

- ``Authorization: Bearer otw_…``: an API token (a program); its requests carry no ambient
  credential, so they need no CSRF token.
- the session cookie: a browser; its state-changing requests must carry the session's CSRF
  token (checked by the service, `detectors.web`).

`identify` only reads; what it finds to write (a session's last-seen time, a timeout, a
refused token) comes back as `IdentityCheck.after`, for a short write transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from detectors.identity.config import IdentitySettings
from detectors.identity.events import record_event
from detectors.identity.sessions import check_session, end_session, touch_session
from detectors.identity.tokens import check_token, touch_token
from detectors.identity.users import User

SESSION, TOKEN = "session", "token"


@dataclass(frozen=True)
class Identity:
    """The authenticated user of one request, and how they proved it."""

    user: User
    via: str
    csrf_token: str = ""
    session_digest: str = ""


@dataclass(frozen=True)
class IdentityCheck:
    """The identity (None: anonymous), why a credential offered was refused, and the write
    to make afterwards (if any)."""

    identity: Identity | None
    refused: str = ""
    after: Callable[[Connection], None] | None = None


def identify(
    conn: Connection, *, authorization: str | None, cookie: str | None, source: str,
    now: datetime, settings: IdentitySettings, activity: bool = True,
) -> IdentityCheck:
    """Who the request is from: a bearer token first (when sent), else the session cookie.
    ``activity`` False (a page refreshing itself) does not count as the user's activity,
    so it does not hold the idle timeout off."""
    if authorization:
        return _bearer(conn, authorization, source, now)
    if cookie:
        return _session(conn, cookie, source, now, settings, activity)
    return IdentityCheck(None)


def _bearer(conn: Connection, authorization: str, source: str, now: datetime) -> IdentityCheck:
    scheme, _, text = authorization.partition(" ")
    if scheme.lower() != "bearer" or not text.strip():
        return IdentityCheck(None, "the Authorization header must be 'Bearer <API token>'")
    found = check_token(conn, text, now=now)
    if found.user is None:
        def log_refusal(c: Connection) -> None:
            record_event(c, at=now, event="token_refused", username=found.token_id or "?",
                         source=source, detail=found.why)
        return IdentityCheck(None, f"API token refused: {found.why}", log_refusal)
    touch = None
    if found.touch:
        def touch(c: Connection) -> None:
            touch_token(c, found.token_id, now)
    return IdentityCheck(Identity(found.user, TOKEN), "", touch)


def _session(conn: Connection, cookie: str, source: str, now: datetime,
             settings: IdentitySettings, activity: bool) -> IdentityCheck:
    found = check_session(conn, cookie, now=now, idle_s=settings.idle_timeout_s,
                          max_s=settings.session_max_s)
    session = found.session
    if session is None:
        return IdentityCheck(None)
    if found.ended:
        def end(c: Connection) -> None:
            end_session(c, session.digest, why=found.ended, source=source, now=now)
        return IdentityCheck(None, f"your session ended ({found.ended}); sign in again", end)
    touch = None
    if found.touch and activity:
        def touch(c: Connection) -> None:
            touch_session(c, session.digest, now)
    identity = Identity(session.user, SESSION, session.csrf_token, session.digest)
    return IdentityCheck(identity, "", touch)
