"""A serial line for tests: two pseudo-terminals joined by ``socat`` (Debian's ``socat``).

What one end writes the other reads, as on a cable: the simulated PLC serves one end and the
agent opens the other. Baud rate and stop bits do not change what a pty carries; parity is
refused: Linux answers EINVAL to 8 data bits with parity, and to 7E1 from the second open of
a pty on, so the test lines run without parity (8N1, 8N2). The test that asks for a pair
starts socat and stops it by its PID; without socat the test is skipped and says why
(``make system-tools`` installs it as root).

Example::

    with serial_pair(tmp_path) as (plc_end, agent_end):
        ...   # ModbusPLC serves plc_end, the agent's controller has serial.port: agent_end
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

#: Bound on waiting for socat to make both ends (it takes ~20 ms here).
READY_S = 10.0


def socat_or_skip() -> str:
    """The socat executable, or a skipped test that says how to get it."""
    found = shutil.which("socat")
    if found is None:
        pytest.skip("socat is not installed (Debian package socat; `make system-tools` as root)")
    return found


@contextmanager
def serial_pair(directory: Path) -> Iterator[tuple[str, str]]:
    """Two joined pseudo-terminals, as links ``directory/plc-end`` and ``directory/agent-end``;
    socat is stopped (by PID) when the block ends."""
    socat = socat_or_skip()
    plc_end, agent_end = directory / "plc-end", directory / "agent-end"
    process = subprocess.Popen(
        [socat, "pty,raw,echo=0,link=" + str(plc_end), "pty,raw,echo=0,link=" + str(agent_end)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + READY_S
        while not (plc_end.exists() and agent_end.exists()):
            if process.poll() is not None:
                raise AssertionError(f"socat exited: {process.stderr.read()!r}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                raise AssertionError(f"socat made no pty pair within {READY_S} s")
            time.sleep(0.01)
        yield str(plc_end), str(agent_end)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        assert process.stderr is not None
        process.stderr.close()
