"""API tokens for programs: per user, shown once, stored as a SHA-256, with an expiry,
revocable. A token is ``otw_<id>_<secret>``: the id finds the row, the secret is compared
in constant time against its hash. A token acts as its user, with the user's roles of the
moment; it never signs (a signature asks for the password).

Example::

    >>> token_id, text = create_token(conn, "qa.lee", "MES bridge", now=now, days=90)
    >>> resolve_token(conn, text, now=now).user_id
    'qa.lee'
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, update

from detectors.identity._exceptions import InvalidUser, NoSuchUser
from detectors.identity.events import record_event
from detectors.identity.users import User, get_user, require_user
from detectors.records.tables import api_tokens
from detectors.records.trail import iso

_TOKEN = re.compile(r"otw_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
#: Last-used times are written at most this often per token (a write per request would not do).
_TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenInfo:
    """A token as `tokens list` shows it (never the secret)."""

    token_id: str
    user_id: str
    name: str
    created_at: str
    expires_at: str
    revoked_at: str | None
    last_used_at: str | None

    def state(self, now: datetime) -> str:
        if self.revoked_at:
            return "revoked"
        return "expired" if datetime.fromisoformat(self.expires_at) <= now else "active"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(conn: Connection, user_id: str, name: str, *, now: datetime, days: int,
                 by: str) -> tuple[str, str]:
    """A new token for ``user_id``: returns (token id, the token text, shown only now)."""
    require_user(conn, user_id)
    if not name.strip() or not name.isprintable():
        raise InvalidUser("a token needs a name saying what uses it (e.g. 'MES bridge')")
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    conn.execute(insert(api_tokens).values(
        token_id=token_id, user_id=user_id, name=name.strip(), secret_sha256=_digest(secret),
        created_at=iso(now), expires_at=iso(now + timedelta(days=days))))
    record_event(conn, at=now, event="token_created", username=user_id, actor=by,
                 detail=f"token {token_id} {name.strip()!r}, {days} days")
    return token_id, f"otw_{token_id}_{secret}"


def list_tokens(conn: Connection, user_id: str | None = None) -> list[TokenInfo]:
    t = api_tokens
    query = select(t.c.token_id, t.c.user_id, t.c.name, t.c.created_at, t.c.expires_at,
                   t.c.revoked_at, t.c.last_used_at).order_by(t.c.user_id, t.c.created_at)
    if user_id is not None:
        query = query.where(t.c.user_id == user_id)
    return [TokenInfo(**row._mapping) for row in conn.execute(query)]


def token_owner(conn: Connection, token_id: str) -> str:
    owner = conn.execute(select(api_tokens.c.user_id)
                         .where(api_tokens.c.token_id == token_id)).scalar()
    if owner is None:
        raise NoSuchUser(f"no token {token_id!r}; `otwatch-records tokens list` shows them")
    return str(owner)


def revoke_token(conn: Connection, token_id: str, *, now: datetime, by: str) -> None:
    owner = token_owner(conn, token_id)
    conn.execute(update(api_tokens).where(api_tokens.c.token_id == token_id,
                                          api_tokens.c.revoked_at.is_(None))
                 .values(revoked_at=iso(now)))
    record_event(conn, at=now, event="token_revoked", username=owner, actor=by,
                 detail=f"token {token_id}")


@dataclass(frozen=True)
class TokenCheck:
    """What a presented token is: its user, or why not (and whether to note its use)."""

    user: User | None
    why: str = ""
    token_id: str = ""
    touch: bool = False


def check_token(conn: Connection, text: str, *, now: datetime) -> TokenCheck:
    """Resolve a presented token (read only); `touch_token` notes its use afterwards."""
    match = _TOKEN.fullmatch(text.strip())
    if match is None:
        return TokenCheck(None, "not an otwatch API token")
    token_id, secret = match.groups()
    row = conn.execute(select(api_tokens).where(api_tokens.c.token_id == token_id)).first()
    if row is None or not hmac.compare_digest(row.secret_sha256, _digest(secret)):
        return TokenCheck(None, "unknown token", token_id)
    if row.revoked_at is not None:
        return TokenCheck(None, "revoked token", token_id)
    if datetime.fromisoformat(row.expires_at) <= now:
        return TokenCheck(None, "expired token", token_id)
    user = get_user(conn, row.user_id)
    if user is None or user.disabled:
        return TokenCheck(None, "the token's user is disabled", token_id)
    last = row.last_used_at
    touch = last is None or datetime.fromisoformat(last) + _TOUCH_EVERY <= now
    return TokenCheck(user, "", token_id, touch)


def touch_token(conn: Connection, token_id: str, now: datetime) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.token_id == token_id)
                 .values(last_used_at=iso(now)))
