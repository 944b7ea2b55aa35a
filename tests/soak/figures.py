"""The soak run's figures: samples over time, and whether each stayed bounded.

A figure is bounded when the largest sample of the run's last third is not above the largest
of its first third by more than the figure's margin (`MARGINS`): a leak grows with time, so
its last third outgrows its first; a start-up ramp (imports, first connections, caches
filling) is inside the first third and sets the bar. Pure: no clock, no processes.

Example::

    >>> series = Series("agent", "rss_mib", [100.0, 101.0, 100.5, 101.2, 100.9, 101.1])
    >>> judge(series).bounded
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Margin:
    """How much the last third's max may exceed the first third's: ``ratio`` of it plus
    ``absolute`` (in the figure's unit)."""

    ratio: float
    absolute: float

    def bar(self, first_max: float) -> float:
        return first_max * (1 + self.ratio) + self.absolute

    def words(self) -> str:
        parts = []
        if self.ratio:
            parts.append(f"+{self.ratio:.0%}")
        if self.absolute:
            parts.append(f"+{self.absolute:g}")
        return " ".join(parts) or "+0"


#: The stated margins, per figure. Memory: Python's allocator keeps freed arenas, and a
#: reconnect (the outage scenario restarts the OPC UA server every cycle) builds new sessions.
MARGINS: dict[str, Margin] = {
    "rss_mib": Margin(ratio=0.15, absolute=16.0),
    "open_fds": Margin(ratio=0.0, absolute=8.0),
    "asyncio_tasks": Margin(ratio=0.0, absolute=5.0),
    "spool_depth": Margin(ratio=0.0, absolute=20.0),
}


@dataclass
class Series:
    """The samples of one figure of one process, in time order."""

    process: str
    figure: str
    samples: list[float] = field(default_factory=list)
    #: Reported, not judged (the embedded broker keeps every message in memory, by design).
    judged: bool = True


@dataclass(frozen=True)
class Verdict:
    series: Series
    first_max: float
    last_max: float
    bar: float
    bounded: bool


def thirds(samples: list[float]) -> tuple[list[float], list[float]]:
    """The first and the last third of the samples (at least one sample each)."""
    n = max(1, len(samples) // 3)
    return samples[:n], samples[-n:]


def judge(series: Series) -> Verdict:
    """Whether ``series`` stayed bounded (see the module docstring)."""
    if not series.samples:
        return Verdict(series, 0.0, 0.0, 0.0, bounded=not series.judged)
    first, last = thirds(series.samples)
    margin = MARGINS[series.figure]
    first_max, last_max = max(first), max(last)
    bar = margin.bar(first_max)
    return Verdict(series, first_max, last_max, bar,
                   bounded=last_max <= bar or not series.judged)


def table(verdicts: list[Verdict]) -> str:
    """The figures as a plain-text table, one line per process and figure."""
    head = (f"{'process':11} {'figure':14} {'samples':>7} {'min':>9} {'first 1/3 max':>13} "
            f"{'last 1/3 max':>12} {'bar':>9} {'margin':>10}  result")
    lines = [head, "-" * len(head)]
    for v in verdicts:
        s = v.series
        low = min(s.samples) if s.samples else 0.0
        result = ("ok" if v.bounded else "GROWS") if s.judged else "reported"
        margin = MARGINS[s.figure].words()
        lines.append(f"{s.process:11} {s.figure:14} {len(s.samples):7d} {low:9.1f} "
                     f"{v.first_max:13.1f} {v.last_max:12.1f} {v.bar:9.1f} {margin:>10}  "
                     f"{result}")
    return "\n".join(lines)
