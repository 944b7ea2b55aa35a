"""The options every otwatch command shares: ``--version``, ``--log-level``, ``--log-format``.

One spelling for all of them, and one exit-code convention (`EXIT_OK`, `EXIT_FAILURE`,
`EXIT_BAD_INPUT`; argparse's own usage errors exit 2 as well).

Example::

    >>> parser = argparse.ArgumentParser(prog="otwatch-siem")
    >>> add_common_arguments(parser)
    >>> args = parser.parse_args(["--log-format", "json"])
    >>> setup_logging_from(args)
"""

from __future__ import annotations

import argparse
from importlib import metadata

from agent.runtime.logs import LOG_FORMATS, LOG_LEVELS, setup_logging

#: Done, or nothing to report.
EXIT_OK = 0
#: A runtime failure: a refused action, a broken dependency, an integrity problem found.
EXIT_FAILURE = 1
#: Bad input: a usage error, a bad config, a missing file.
EXIT_BAD_INPUT = 2


def otwatch_version() -> str:
    """The installed distribution's version (``0.1.0``), or ``unknown`` from a bare checkout."""
    try:
        return metadata.version("otwatch")
    except metadata.PackageNotFoundError:
        return "unknown"


def add_common_arguments(
    parser: argparse.ArgumentParser, *, default_level: str = "INFO"
) -> None:
    """Add ``--version`` (``<prog> <version>``), ``--log-level`` and ``--log-format``."""
    parser.add_argument("--version", action="version",
                        version=f"{parser.prog} {otwatch_version()}")
    parser.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS,
                        default=default_level, metavar="LEVEL",
                        help=f"{', '.join(LOG_LEVELS)} (any case; default {default_level})")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="text",
                        help="text (UTC times) or json (one object per line); default text")


def setup_logging_from(args: argparse.Namespace, **kwargs: object) -> None:
    """`setup_logging` with the level and format the command line gave."""
    setup_logging(args.log_level, log_format=args.log_format, **kwargs)  # type: ignore[arg-type]

