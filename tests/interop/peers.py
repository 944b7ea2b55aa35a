"""Servers that otwatch did not write (node-opcua, jsmodbus from npm), run as node processes.

Each script in this folder serves its own layout on a free loopback port and plays its own
timeline when told (see the scripts' headers for the JSON-lines protocol). `Peer` starts one,
talks to it, and stops it by its PID. The npm packages are installed by ``make test`` (``npm ci
--prefix tests/interop``, where npm exists); without node or the packages the tests skip and
say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
#: The npm packages the scripts need (pinned in package.json and package-lock.json).
PACKAGES = ("node-opcua", "jsmodbus")
#: node-opcua makes its certificate and loads the standard nodeset first: seconds.
START_S = 60.0


def node_or_skip() -> str:
    """The node binary, or skip the test with the reason and the fix."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the interop tests need Node.js 20 and npm "
                    "(install them, then run make test)")
    missing = [p for p in PACKAGES if not (HERE / "node_modules" / p / "package.json").exists()]
    if missing:
        pytest.skip(f"npm packages {', '.join(missing)} are not installed in tests/interop: run "
                    "`npm ci --prefix tests/interop` (make test does where npm exists; it "
                    "failed or npm is missing)")
    return node


class Peer:
    """One running peer script: its ``ready`` message, commands, and a stop by PID."""

    def __init__(self, process: asyncio.subprocess.Process, stderr: Path) -> None:
        self.process = process
        self.stderr = stderr
        self.ready: dict[str, Any] = {}

    async def message(self, event: str, within: float = 30.0) -> dict[str, Any]:
        """The next JSON line with this ``event`` (other output is skipped)."""
        assert self.process.stdout is not None
        async with asyncio.timeout(within):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    raise AssertionError(f"the peer exited ({self.stderr.read_text()[-2000:]})")
                with contextlib.suppress(ValueError):
                    message = json.loads(line)
                    if isinstance(message, dict) and message.get("event") == event:
                        return message

    async def tell(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()

    async def play(self) -> list[dict[str, Any]]:
        """Play the timeline; the steps as applied (with the time each was)."""
        await self.tell("play")
        steps = []
        for _ in self.ready["timeline"]:
            steps.append(await self.message("step"))
        await self.message("done")
        return steps

    async def writes(self) -> int:
        """Write requests any client sent so far, as the peer counted them."""
        await self.tell("writes")
        return int((await self.message("writes"))["count"])

    async def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL if it is still there after five seconds."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(5.0):
                    await self.process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.process.pid, signal.SIGKILL)
                await self.process.wait()


@contextlib.asynccontextmanager
async def peer(script: str, *args: str, workdir: Path) -> AsyncIterator[Peer]:
    """Start ``node script args...`` in this folder; yield it once it listens; stop it."""
    node = node_or_skip()
    stderr = workdir / f"{script}.stderr"
    with stderr.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            node, str(HERE / script), *args, cwd=HERE, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=err,
        )
    running = Peer(process, stderr)
    try:
        running.ready = await running.message("ready", within=START_S)
        yield running
    finally:
        await running.stop()
