"""``python -m tests.detectors.crash_after_record run --config FILE``: a classifier that dies.

The real classifier (`detectors.cli.serve`), except that the process ends hard (exit code 137,
no cleanup, as a power cut or ``kill -9`` would) right after its first records transaction:
before the batch's alerts are sent and before its offsets are committed. The crash test runs
it to prove nothing is lost or duplicated; the hook is passed in here, so production code
reads no test switch from its environment.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from agent.runtime.logs import setup_logging
from detectors.cli import serve
from detectors.config import load_classifier_config

EXIT_CODE = 137


def crash() -> None:
    logging.getLogger(__name__).error("exiting before the offset commit (test hook)")
    os._exit(EXIT_CODE)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crash_after_record")
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    setup_logging("INFO")
    return serve(load_classifier_config(args.config), after_record=crash)


if __name__ == "__main__":
    sys.exit(main())
