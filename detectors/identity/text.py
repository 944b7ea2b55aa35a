"""User-supplied text made fit for a log line.

A user name typed at sign-in goes into the log as it was typed; a newline in it must not
start a forged log line, and a right-to-left override must not turn a line around. Every
control and format character (Unicode categories Cc, Cf, Zl, Zp) is shown as an escape.

Example::

    >>> loggable("eve\\n2026-03-02 INFO sign-in: user admin")
    'eve\\\\x0a2026-03-02 INFO sign-in: user admin'
"""

from __future__ import annotations

import unicodedata

_HIDDEN = ("Cc", "Cf", "Zl", "Zp")


def _escaped(char: str) -> str:
    if unicodedata.category(char) not in _HIDDEN:
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def loggable(text: str, limit: int = 200) -> str:
    """``text`` with control characters escaped, cut to ``limit`` characters (marked …)."""
    cleaned = "".join(_escaped(c) for c in text[: limit + 1])
    return cleaned if len(text) <= limit else cleaned[:limit] + "…"
