"""The security log: every sign-in and failure, lockout, sign-out, and change to users or
tokens, with the user (as typed, control characters escaped) and the source address.

Each event is a row of ``security_log`` (written in the caller's transaction) and a line of
the ``detectors.identity`` log: WARNING for refusals, INFO for the rest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from detectors.identity.text import loggable
from detectors.records.tables import security_log
from detectors.records.trail import iso

log = logging.getLogger("detectors.identity")

#: Events logged at WARNING: someone was refused, or locked out.
REFUSALS = frozenset({"sign_in_refused", "locked", "signature_refused", "token_refused"})


@dataclass(frozen=True)
class SecurityEvent:
    """One row of the security log."""

    seq: int
    at: str
    event: str
    username: str
    source: str
    actor: str
    detail: str


def record_event(
    conn: Connection, *, at: datetime, event: str, username: str, source: str = "local",
    actor: str = "", detail: str = "",
) -> None:
    """Log one event (row and log line); user-supplied text is escaped first."""
    row = {"at": iso(at), "event": event, "username": loggable(username),
           "source": loggable(source, 100), "actor": loggable(actor),
           "detail": loggable(detail, 500)}
    conn.execute(insert(security_log).values(row))
    level = logging.WARNING if event in REFUSALS else logging.INFO
    by = f" by {row['actor']}" if row["actor"] and row["actor"] != row["username"] else ""
    why = f": {row['detail']}" if row["detail"] else ""
    log.log(level, "%s: user %s from %s%s%s", event, row["username"], row["source"], by, why)


def read_events(conn: Connection, *, username: str | None = None,
                limit: int = 200) -> list[SecurityEvent]:
    """The newest events first (of one user, when ``username`` is given)."""
    t = security_log
    query = select(t).order_by(t.c.seq.desc()).limit(limit)
    if username is not None:
        query = query.where(t.c.username == loggable(username))
    return [SecurityEvent(**row._mapping) for row in conn.execute(query)]
