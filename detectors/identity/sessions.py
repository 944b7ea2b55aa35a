"""Browser sessions, kept server side in the records database.

Why server side rather than an encrypted cookie: a session can then be ended for real (sign
out, idle timeout, the user disabled by an admin) and is checked against the users table on
every request, and there is no cookie key to provision and rotate. The cookie carries a random
id (256 bits); the table keeps its SHA-256, so a copy of the database opens no session.

Each session has its CSRF token (synchronizer token): every state-changing request made with
the session cookie must send it back (form field ``csrf_token`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, update

from detectors.identity.events import record_event
from detectors.identity.users import User, get_user
from detectors.records.tables import sessions
from detectors.records.trail import iso

COOKIE = "otwatch_session"
#: The last-seen time is written at most this often (idle timeouts are this precise).
_TOUCH_EVERY = timedelta(seconds=10)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """A live session: its user and the CSRF token its forms and requests must carry."""

    user: User
    csrf_token: str
    digest: str


def start_session(conn: Connection, user: User, *, source: str, now: datetime) -> tuple[str, str]:
    """A new session for ``user``: returns (cookie value, CSRF token)."""
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    conn.execute(insert(sessions).values(
        session_sha256=_digest(session_id), user_id=user.user_id, csrf_token=csrf,
        source=source, created_at=iso(now), last_seen_at=iso(now)))
    return session_id, csrf


@dataclass(frozen=True)
class SessionCheck:
    session: Session | None
    ended: str = ""
    touch: bool = False


def check_session(conn: Connection, cookie: str, *, now: datetime, idle_s: int,
                  max_s: int) -> SessionCheck:
    """The live session of a cookie (read only), or why there is none; a session past its
    idle or absolute limit is reported as ``ended`` for `end_session` to close."""
    row = conn.execute(select(sessions).where(sessions.c.session_sha256 == _digest(cookie))
                       ).first()
    if row is None or row.ended_at is not None:
        return SessionCheck(None)
    digest = row.session_sha256
    if datetime.fromisoformat(row.last_seen_at) + timedelta(seconds=idle_s) <= now:
        return SessionCheck(Session(_nobody(row.user_id), "", digest), "idle timeout")
    if datetime.fromisoformat(row.created_at) + timedelta(seconds=max_s) <= now:
        return SessionCheck(Session(_nobody(row.user_id), "", digest), "session too old")
    user = get_user(conn, row.user_id)
    if user is None or user.disabled:
        return SessionCheck(Session(_nobody(row.user_id), "", digest), "user disabled")
    touch = datetime.fromisoformat(row.last_seen_at) + _TOUCH_EVERY <= now
    return SessionCheck(Session(user, row.csrf_token, digest), "", touch)


def _nobody(user_id: str) -> User:
    return User(user_id, user_id, frozenset(), "", True)


def touch_session(conn: Connection, digest: str, now: datetime) -> None:
    conn.execute(update(sessions).where(sessions.c.session_sha256 == digest)
                 .values(last_seen_at=iso(now)))


def end_session(conn: Connection, digest: str, *, why: str, source: str, now: datetime) -> None:
    """Close a session (sign-out, timeout) and log it."""
    user_id = conn.execute(select(sessions.c.user_id)
                           .where(sessions.c.session_sha256 == digest,
                                  sessions.c.ended_at.is_(None))).scalar()
    if user_id is None:
        return
    conn.execute(update(sessions).where(sessions.c.session_sha256 == digest)
                 .values(ended_at=iso(now), ended_why=why))
    event = "sign_out" if why == "signed out" else "session_ended"
    record_event(conn, at=now, event=event, username=str(user_id), source=source, detail=why)


def digest_of(cookie: str) -> str:
    """The stored form of a cookie value."""
    return _digest(cookie)
