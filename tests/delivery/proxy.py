"""A TCP proxy the test controls: forward 127.0.0.1:listen -> 127.0.0.1:target, cut, restore.

Start the broker with ``advertised_port`` = the proxy's port so that every connection a Kafka
client opens (bootstrap and per-broker) goes through the proxy. ``cut()`` closes every open
connection and stops listening (new connections are refused: ECONNREFUSED, like a dead
uplink that fails fast); ``restore()`` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(self, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.listen_port = listen_port
        self.target_port = target_port
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.listen_port, reuse_address=True
        )
        return self

    restore = start

    async def cut(self) -> None:
        """Refuse new connections and drop every open one."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        await self._drop_all()

    async def stop(self) -> None:
        await self.cut()

    async def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        pumps, self._pumps = list(self._pumps), set()
        for task in pumps:
            task.cancel()
        if pumps:
            await asyncio.wait(pumps, timeout=2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(src, dst))
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.transport.abort()
            self._writers.discard(dst)
