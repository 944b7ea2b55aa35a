"""Users and their roles, kept in the records database (table ``users``).

A user id is the sign-in name in lower case (``qa.lee``): letters, digits and ``._@-``. Ids
are never reused: a user who leaves is disabled, not deleted, so that every trail entry keeps
naming one person. Local users have an argon2id hash; directory users (``source`` "ldap")
are added or updated at each sign-in, with the roles their groups map to.

Every change is logged to the security log with the admin who made it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import Connection, func, insert, select, update

from detectors.identity._exceptions import InvalidUser, NoSuchUser, UserExists
from detectors.identity.events import record_event
from detectors.records import Actor, Role
from detectors.records.tables import sessions, users
from detectors.records.trail import canonical_json, iso

_USER_ID = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
LOCAL, LDAP = "local", "ldap"


@dataclass(frozen=True)
class User:
    """One person: id, printed name (what their signatures show), roles, where the password
    is checked, and whether they may sign in."""

    user_id: str
    printed_name: str
    roles: frozenset[str]
    source: str
    disabled: bool
    password_hash: str | None = None

    def actor(self) -> Actor:
        """Who acts on records when this user does."""
        return Actor(self.user_id, self.roles, self.printed_name)


def user_id_of(typed: str) -> str:
    """The user id for a name as typed (trimmed, lower case), or `InvalidUser`."""
    candidate = typed.strip().lower()
    if not _USER_ID.fullmatch(candidate):
        raise InvalidUser(
            f"user name {typed!r} is not valid: 1-64 characters, letters, digits and . _ @ -, "
            "starting with a letter or digit")
    return candidate


def roles_of(names: Iterable[str]) -> frozenset[str]:
    """Validated role names, or `InvalidUser` naming the known ones."""
    known = {r.value for r in Role}
    roles = frozenset(n.strip().lower() for n in names if n.strip())
    unknown = sorted(roles - known)
    if unknown:
        raise InvalidUser(f"unknown role(s) {', '.join(unknown)}; the roles are: "
                          f"{', '.join(r.value for r in Role)}")
    return roles


def _printed(name: str) -> str:
    name = " ".join(name.split())
    if not name or any(not c.isprintable() for c in name) or len(name) > 120:
        raise InvalidUser("a printed name is the person's full name, 1-120 printable characters")
    return name


def _user(row: object) -> User:
    m = row._mapping  # type: ignore[attr-defined]
    return User(user_id=m["user_id"], printed_name=m["printed_name"],
                roles=frozenset(orjson.loads(m["roles"])), source=m["source"],
                disabled=bool(m["disabled"]), password_hash=m["password_hash"])


def get_user(conn: Connection, user_id: str) -> User | None:
    row = conn.execute(select(users).where(users.c.user_id == user_id)).first()
    return None if row is None else _user(row)


def require_user(conn: Connection, user_id: str) -> User:
    found = get_user(conn, user_id)
    if found is None:
        raise NoSuchUser(f"no user {user_id!r}; `otwatch-records users list` shows them")
    return found


def list_users(conn: Connection) -> list[User]:
    return [_user(row) for row in conn.execute(select(users).order_by(users.c.user_id))]


def count_users(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(users)).scalar_one())


def add_user(
    conn: Connection, user_id: str, printed_name: str, roles: Iterable[str], *,
    password_hash: str | None, source: str = LOCAL, by: str, now: datetime,
) -> User:
    """Add a user; ``by`` is the admin (or "bootstrap" for the first one)."""
    uid, name, held = user_id_of(user_id), _printed(printed_name), roles_of(roles)
    if get_user(conn, uid) is not None:
        raise UserExists(f"user {uid!r} exists (ids are never reused; disabled users stay)")
    conn.execute(insert(users).values(
        user_id=uid, printed_name=name, roles=canonical_json(sorted(held)), source=source,
        password_hash=password_hash, disabled=False, created_at=iso(now), updated_at=iso(now)))
    record_event(conn, at=now, event="user_added", username=uid, actor=by,
                 detail=f"{source} user, roles {','.join(sorted(held)) or 'none'}")
    return require_user(conn, uid)


def _change(conn: Connection, user_id: str, now: datetime, **values: object) -> User:
    require_user(conn, user_id)
    conn.execute(update(users).where(users.c.user_id == user_id)
                 .values(updated_at=iso(now), **values))
    return require_user(conn, user_id)


def set_roles(conn: Connection, user_id: str, roles: Iterable[str], *, by: str,
              now: datetime) -> User:
    held = roles_of(roles)
    user = _change(conn, user_id, now, roles=canonical_json(sorted(held)))
    record_event(conn, at=now, event="roles_changed", username=user_id, actor=by,
                 detail=",".join(sorted(held)) or "none")
    return user


def set_disabled(conn: Connection, user_id: str, disabled: bool, *, by: str,
                 now: datetime) -> User:
    """Disable (or enable again) a user; disabling ends their browser sessions at once."""
    user = _change(conn, user_id, now, disabled=disabled)
    if disabled:
        conn.execute(update(sessions).where(sessions.c.user_id == user_id,
                                            sessions.c.ended_at.is_(None))
                     .values(ended_at=iso(now), ended_why="user disabled"))
    record_event(conn, at=now, event="user_disabled" if disabled else "user_enabled",
                 username=user_id, actor=by)
    return user


def set_password_hash(conn: Connection, user_id: str, password_hash: str, *, by: str,
                      now: datetime) -> User:
    user = require_user(conn, user_id)
    if user.source != LOCAL:
        raise InvalidUser(f"{user_id!r} signs in with the site's directory; change the "
                          "password there")
    user = _change(conn, user_id, now, password_hash=password_hash)
    record_event(conn, at=now, event="password_changed", username=user_id, actor=by)
    return user


def upsert_directory_user(conn: Connection, user_id: str, printed_name: str,
                          roles: frozenset[str], *, now: datetime) -> User:
    """A directory user as of this sign-in: added on the first, roles and name refreshed
    on each (the directory's groups decide); a disabled one stays disabled."""
    found = get_user(conn, user_id)
    if found is None:
        return add_user(conn, user_id, printed_name, roles, password_hash=None, source=LDAP,
                        by="directory", now=now)
    if found.source != LDAP:
        raise InvalidUser(f"{user_id!r} is a local user; it signs in with its local password")
    if found.roles != roles or found.printed_name != printed_name:
        found = _change(conn, user_id, now, roles=canonical_json(sorted(roles)),
                        printed_name=_printed(printed_name))
        record_event(conn, at=now, event="roles_changed", username=user_id, actor="directory",
                     detail=",".join(sorted(roles)) or "none")
    return found
