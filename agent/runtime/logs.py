"""Logging set-up for every otwatch command line: one level, one format, quiet libraries.

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


def setup_logging(
    level: str | int = "INFO", *, fmt: str = LOG_FORMAT, stream: TextIO | None = None
) -> None:
    """Configure the root logger once per process (``level`` as given on the command line, e.g.
    ``"debug"``), then quiet the libraries. ``stream`` defaults to standard error."""
    logging.basicConfig(
        level=level.upper() if isinstance(level, str) else level, format=fmt, stream=stream
    )
    quiet_libraries()


def quiet_libraries() -> None:
    """Set the noisy libraries' loggers to `LIBRARY_LEVELS` (part of `setup_logging`)."""
    for name, level in LIBRARY_LEVELS.items():
        logging.getLogger(name).setLevel(level)
