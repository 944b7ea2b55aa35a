"""Logging set-up for every otwatch command line: one level, one format, quiet libraries.

The libraries report each failed attempt (aiokafka every reconnect, pymodbus every request
that got no answer, with a dump of the last 20 frames appended to its ERROR); our own code
logs each outage once with what it means (`agent.runtime.outage`). So their records are
*demoted*: rewritten to DEBUG, and a filter on the process's handlers drops every record below
the process's level. With ``--log-level DEBUG`` they are all there, at DEBUG.

(A filter on a logger sees only the records logged on that very logger, not on its children;
the handler filter sees them all, whatever logger they come from. A demoting filter alone,
without it, only relabels: the handler would still print the record, as ``DEBUG``.)

Example::

    >>> setup_logging(args.log_level)                      # otwatch-agent, otwatch-classifier
    >>> setup_logging("INFO", fmt="otwatch-sim: %(message)s")
"""

from __future__ import annotations

import logging
from typing import TextIO

#: The services' format: time, level, logger, message.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: The protocol and Kafka libraries log every request at INFO: keep their warnings only. asyncua
#: logs its own warnings and a traceback on every lost session; our sources log each outage
#: once, so only asyncua's worst survives.
LIBRARY_LEVELS = {
    "aiokafka": logging.WARNING,
    "alembic": logging.WARNING,
    "pymodbus": logging.WARNING,
    "asyncua": logging.CRITICAL,
}

#: Loggers whose records are demoted to DEBUG: pymodbus logs every unanswered request at ERROR
#: with a frame dump, and its warnings ("Not connected, trying to connect!") once per attempt;
#: the Modbus source reports the outage once.
DEMOTED_LOGGERS = ("pymodbus", "pymodbus.logging")


class DemoteToDebug(logging.Filter):
    """A logger filter: rewrite the record's level to DEBUG (`AtProcessLevel` then drops it
    unless the process logs at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


class AtProcessLevel(logging.Filter):
    """A handler filter: drop records below the root logger's level (demoted ones)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.getLogger().getEffectiveLevel()


DEMOTE = DemoteToDebug()
_AT_PROCESS_LEVEL = AtProcessLevel()


def setup_logging(
    level: str | int = "INFO", *, fmt: str = LOG_FORMAT, stream: TextIO | None = None
) -> None:
    """Configure the root logger once per process (``level`` as given on the command line, e.g.
    ``"debug"``), then quiet the libraries. ``stream`` defaults to standard error.

    The handler this makes drops demoted records (`AtProcessLevel`); handlers someone else set
    up (a test runner's) are left as they are."""
    root = logging.getLogger()
    before = list(root.handlers)
    logging.basicConfig(
        level=level.upper() if isinstance(level, str) else level, format=fmt, stream=stream
    )
    for handler in root.handlers:
        if handler not in before and _AT_PROCESS_LEVEL not in handler.filters:
            handler.addFilter(_AT_PROCESS_LEVEL)
    quiet_libraries()


def quiet_libraries() -> None:
    """Set the noisy libraries' loggers to `LIBRARY_LEVELS` and demote `DEMOTED_LOGGERS` (part
    of `setup_logging`). Idempotent."""
    for name, level in LIBRARY_LEVELS.items():
        logging.getLogger(name).setLevel(level)
    for name in DEMOTED_LOGGERS:
        demote(logging.getLogger(name))


def demote(logger: logging.Logger) -> None:
    """Rewrite ``logger``'s own records to DEBUG. Idempotent."""
    if DEMOTE not in logger.filters:
        logger.addFilter(DEMOTE)
