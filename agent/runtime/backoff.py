"""Capped exponential backoff: the one way otwatch waits before trying again.

Example::

    >>> backoff = Backoff(first_s=0.5, cap_s=10.0)
    >>> [backoff.next() for _ in range(6)]
    [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    >>> backoff.reset()      # after a success: the next failure waits first_s again
"""

from __future__ import annotations

from dataclasses import dataclass


def backoff_s(attempt: int, base_s: float, cap_s: float) -> float:
    """The delay before retry number ``attempt`` (0 first): base, 2*base, 4*base, ... up to cap."""
    return float(min(cap_s, base_s * 2 ** min(attempt, 30)))


@dataclass
class Backoff:
    """The delays of one run of failures; `reset` after a success."""

    first_s: float
    cap_s: float
    attempt: int = 0

    def next(self) -> float:
        """The delay before the next attempt (and count this one)."""
        delay = backoff_s(self.attempt, self.first_s, self.cap_s)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
