"""Lockout after repeated failed sign-ins, per name as typed (known or not, so that a lock
tells nothing about which names exist). A success clears the count; a lock lasts
``lockout_s`` and a sign-in during it is refused without checking the password."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update

from detectors.identity.text import loggable
from detectors.records.tables import lockouts
from detectors.records.trail import iso


def _key(username: str) -> str:
    return loggable(username.strip().lower(), 100)


def locked_until(conn: Connection, username: str, now: datetime) -> datetime | None:
    """The end of the lock on ``username``, if one is in force at ``now``."""
    until = conn.execute(select(lockouts.c.locked_until)
                         .where(lockouts.c.username == _key(username))).scalar()
    if until is None:
        return None
    moment = datetime.fromisoformat(until)
    return moment if moment > now else None


def record_failure(conn: Connection, username: str, now: datetime, *, after: int,
                   lock_s: int) -> datetime | None:
    """Count one failure; returns the end of the lock it starts, if it starts one."""
    key = _key(username)
    failures = conn.execute(select(lockouts.c.failures)
                            .where(lockouts.c.username == key)).scalar()
    count = 1 if failures is None else int(failures) + 1
    until = now + timedelta(seconds=lock_s) if count >= after else None
    values = {"failures": 0 if until else count, "last_failure_at": iso(now),
              "locked_until": None if until is None else iso(until)}
    if failures is None:
        conn.execute(insert(lockouts).values(username=key, **values))
    else:
        conn.execute(update(lockouts).where(lockouts.c.username == key).values(values))
    return until


def clear_failures(conn: Connection, username: str) -> None:
    conn.execute(delete(lockouts).where(lockouts.c.username == _key(username)))
