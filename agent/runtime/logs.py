"""Logging set-up for every otwatch command line: one level, one format, quiet libraries.

Two formats (``--log-format``): ``text``, one line per record with a UTC ISO 8601 time
(``2026-11-30T13:21:31.216Z INFO agent.runner: ...``), and ``json``, one JSON object per line
(``{"ts": "2026-11-30T13:21:31.216Z", "level": "INFO", "logger": "agent.runner", "message":
...}``) for a log shipper. Both carry the zone: the ``Z`` of UTC.

The libraries report each failed attempt (aiokafka every reconnect, pymodbus every request
that got no answer, with a dump of the last 20 frames appended to its ERROR); our own code
logs each outage once with what it means (`agent.runtime.outage`). So their records are
*demoted* at the process's handler (`LibraryNoise`): rewritten to DEBUG, then dropped unless
the process logs at DEBUG. A filter on the handler sees every record that reaches it,
whatever logger it comes from (a filter on a logger sees only the records of that very
logger, not its children's: the earlier per-logger filter let the children's lines through).

Example::

    >>> setup_logging(args.log_level, log_format=args.log_format)  # every otwatch command
    >>> setup_logging("INFO", fmt="otwatch-sim: %(message)s")
"""

from __future__ import annotations

import json
import logging
import time
from typing import Literal, TextIO

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
#: The spellings of ``--log-level`` (any case).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: The services' text format: UTC time, level, logger, message.
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

#: Loggers whose records (their children's too) are demoted to DEBUG: pymodbus logs every
#: unanswered request at ERROR with a frame dump, and its warnings ("Not connected, trying to
#: connect!") once per attempt; the Modbus source reports the outage once.
DEMOTED_TREES = ("pymodbus",)
#: Loggers whose own records are demoted (`demote`); aiokafka's connection loggers are added
#: by `agent.kafka.client_logs`.
_demoted: set[str] = set()


def demote(logger: logging.Logger | str) -> None:
    """Rewrite ``logger``'s own records to DEBUG at the process's handler. Idempotent."""
    _demoted.add(logger if isinstance(logger, str) else logger.name)


def is_demoted(name: str) -> bool:
    """Whether records of the logger ``name`` are library noise (shown only at DEBUG)."""
    return name in _demoted or any(
        name == tree or name.startswith(tree + ".") for tree in DEMOTED_TREES
    )


class LibraryNoise(logging.Filter):
    """A handler filter: demote the library loggers' records to DEBUG, then drop every record
    below the root logger's level (the demoted ones, unless the process logs at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG and is_demoted(record.name):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= logging.getLogger().getEffectiveLevel()


def utc_timestamp(created: float) -> str:
    """``2026-11-30T13:21:31.216Z``: ISO 8601, UTC, milliseconds."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{whole}.{int(created * 1000) % 1000:03d}Z"


class UtcTextFormatter(logging.Formatter):
    """The text format with UTC ISO 8601 times (the zone written: ``Z``)."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return utc_timestamp(record.created)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts`` (UTC), ``level``, ``logger``, ``message``, and
    ``exception`` (the traceback text) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


_NOISE = LibraryNoise()


def setup_logging(
    level: str | int = "INFO", *, fmt: str = LOG_FORMAT, stream: TextIO | None = None,
    log_format: LogFormat = "text",
) -> None:
    """Configure the root logger once per process (``level`` as given on the command line, e.g.
    ``"debug"``; ``log_format`` text or json), then quiet the libraries. ``stream`` defaults to
    standard error.

    The handler this makes filters library noise (`LibraryNoise`); handlers someone else set
    up (a test runner's) are left as they are."""
    root = logging.getLogger()
    before = list(root.handlers)
    logging.basicConfig(
        level=level.upper() if isinstance(level, str) else level, format=fmt, stream=stream
    )
    formatter = JsonFormatter() if log_format == "json" else UtcTextFormatter(fmt)
    for handler in root.handlers:
        if handler not in before:
            handler.setFormatter(formatter)
            if _NOISE not in handler.filters:
                handler.addFilter(_NOISE)
    quiet_libraries()


def quiet_libraries() -> None:
    """Set the noisy libraries' loggers to `LIBRARY_LEVELS` (part of `setup_logging`)."""
    for name, level in LIBRARY_LEVELS.items():
        logging.getLogger(name).setLevel(level)
