"""RFC 5424 syslog messages and their octet-counted framing (RFC 6587 3.4.1, RFC 5425).

``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG``: no structured data, and MSG is the
CEF text in UTF-8 without a byte order mark (RFC 5424's MSG-ANY: CEF parsers expect the
message to begin with ``CEF:``). On a stream (TCP, TLS) each message is sent as
``<length> SP <message>``, so a message may hold any byte and the collector never has to
guess where one ends.

Example::

    >>> header = SyslogHeader(hostname="relay-1", facility="auth")
    >>> frame(header.message("CEF:0|...", severity="high", time=now))
    b'123 <34>1 2026-11-23T10:00:00.000000Z relay-1 otwatch 4711 alert - CEF:0|...'
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

#: RFC 5424 facility codes by name.
FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13,
    "alert": 14, "clock": 15, "local0": 16, "local1": 17, "local2": 18, "local3": 19,
    "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}
#: Alert severity to syslog severity: critical 2 (Critical), high 3 (Error), medium 4
#: (Warning), low 5 (Notice).
SEVERITIES = {"critical": 2, "high": 3, "medium": 4, "low": 5}
NIL = "-"
_PRINTUSASCII = re.compile(r"[\x21-\x7e]+")


def header_field(text: str | None, max_chars: int) -> str:
    """A header field as RFC 5424 allows it (printable US-ASCII, no space, bounded), or ``-``."""
    if not text:
        return NIL
    kept = "".join(_PRINTUSASCII.findall(text))[:max_chars]
    return kept or NIL


@dataclass(frozen=True)
class SyslogHeader:
    """The fixed parts of every message one process sends."""

    hostname: str
    facility: str = "auth"
    app_name: str = "otwatch"
    msgid: str = "alert"
    procid: str = field(default_factory=lambda: str(os.getpid()))

    def message(self, msg: str, *, severity: str, time: datetime | None) -> bytes:
        """One RFC 5424 message; ``time`` is when the alert was raised (None: unknown)."""
        pri = FACILITIES[self.facility] * 8 + SEVERITIES.get(severity, 4)
        parts = (
            f"<{pri}>1", timestamp(time), header_field(self.hostname, 255),
            header_field(self.app_name, 48), header_field(self.procid, 128),
            header_field(self.msgid, 32), NIL,
        )
        return (" ".join(parts) + " " + msg).encode()


def timestamp(time: datetime | None) -> str:
    """RFC 5424 TIMESTAMP: UTC, microseconds, ``Z``; ``-`` when unknown or without a zone."""
    if time is None or time.tzinfo is None:
        return NIL
    try:
        t = time.astimezone(UTC)
    except OverflowError:  # a time a day from datetime's limits
        return NIL
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:"
            f"{t.second:02d}.{t.microsecond:06d}Z")


def frame(message: bytes) -> bytes:
    """Octet-counting framing (RFC 6587 3.4.1): ``<length> SP <message>``."""
    return b"%d %s" % (len(message), message)
