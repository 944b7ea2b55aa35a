"""User-typed text in the log: control and format characters escaped, length bounded."""

from __future__ import annotations

import pytest

from detectors.identity import loggable


@pytest.mark.parametrize(
    ("typed", "logged"),
    [
        ("qa.lee", "qa.lee"),
        ("eve\nINFO sign_in: user admin", "eve\\x0aINFO sign_in: user admin"),
        ("eve\r\x1b[2K", "eve\\x0d\\x1b[2K"),
        ("a\u202eb", "a\\u202eb"),  # right-to-left override
        ("line\u2028sep", "line\\u2028sep"),
        ("Zoë Müller", "Zoë Müller"),
    ],
)
def test_loggable(typed: str, logged: str) -> None:
    assert loggable(typed) == logged


def test_loggable_cuts_long_text() -> None:
    assert loggable("x" * 500, limit=10) == "x" * 10 + "…"
