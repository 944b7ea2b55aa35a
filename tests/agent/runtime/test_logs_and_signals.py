"""Command-line plumbing: the libraries are quieted, and SIGTERM/SIGINT call the service's stop.

The signal test sends a real signal to this process; the handler is installed by
`stop_on_signals` around the send, and removed after it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from agent.runtime.logs import LIBRARY_LEVELS, setup_logging
from agent.runtime.signals import STOP_SIGNALS, run_event_loop, stop_on_signals


def test_setup_logging_quiets_the_libraries() -> None:
    setup_logging("debug")  # pytest owns the root handlers; the library levels are ours
    for name, level in LIBRARY_LEVELS.items():
        assert logging.getLogger(name).level == level
    assert logging.getLogger("pymodbus").level == logging.WARNING
    assert logging.getLogger("asyncua").level == logging.CRITICAL


def test_each_stop_signal_calls_stop_and_the_handlers_go_with_the_block() -> None:
    async def main() -> list[int]:
        seen: list[int] = []
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            stopped = asyncio.Event()
            with stop_on_signals(lambda sig=sig, stopped=stopped: (seen.append(sig),
                                                                   stopped.set())):
                os.kill(os.getpid(), sig)
                await asyncio.wait_for(stopped.wait(), 5)
            assert not loop.remove_signal_handler(sig)  # already removed by the block
        return seen

    assert run_event_loop(main()) == [signal.SIGINT, signal.SIGTERM]
