"""The syslog sink: one connection to the collector, owned, reconnected with capped backoff.

`SyslogSink.deliver` sends a batch of framed messages and returns once the collector has taken
every byte: written, flushed from our buffers, and acknowledged by the collector's TCP stack
(Linux ``SIOCOUTQ`` reaches 0) on a connection it has not closed. Syslog over TCP has no
application-level acknowledgement, so this is the most a sender can know; a collector that
dies after its kernel took the bytes loses them. A failure (refused, reset, closed, TLS error,
no acknowledgement within ``ack_timeout_s``) closes the connection and the whole batch is sent
again on a new one: at-least-once, the SIEM dedupes on ``externalId`` (the alert id).

Outages are logged once (`agent.runtime.outage.OutageLog`) and shown by the gauge
``otwatch_siem_collector_up``.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import logging
import socket
import ssl
import termios
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from agent.runtime.backoff import Backoff
from agent.runtime.outage import OutageLog
from detectors.siem import metrics

log = logging.getLogger("detectors.siem")

T = TypeVar("T")
#: How often the acknowledgement of a batch is looked at.
ACK_POLL_S = 0.005
#: The ioctl that reads a TCP socket's unacknowledged bytes (SIOCOUTQ), where there is one.
_OUTQ = getattr(termios, "TIOCOUTQ", None)


class CollectorGone(ConnectionError):
    """The collector closed or broke the connection, or did not acknowledge in time."""


@dataclass(frozen=True)
class Collector:
    """Where the alerts go: host and port, and the TLS context (None: plain TCP)."""

    host: str
    port: int
    ssl_context: ssl.SSLContext | None = None
    connect_timeout_s: float = 10.0
    ack_timeout_s: float = 30.0

    def __str__(self) -> str:
        return f"{'tls' if self.ssl_context else 'tcp'}://{self.host}:{self.port}"


class SyslogSink:
    """Delivers batches of framed syslog messages to one collector; `close` when done."""

    def __init__(self, collector: Collector, *, backoff: Backoff | None = None) -> None:
        self.collector = collector
        self._backoff = backoff or Backoff(first_s=0.5, cap_s=30.0)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._outage = OutageLog(
            log, f"syslog collector {collector} not taking alerts",
            f"syslog collector {collector} takes alerts again",
            gauge=metrics.COLLECTOR_UP, failures=metrics.SEND_FAILURES,
        )

    async def deliver(self, frames: Sequence[bytes], stop: asyncio.Event) -> bool:
        """Send every frame; True once the collector took them all, False if stopped first."""
        while not stop.is_set():
            try:
                await _unless_stopped(self._send(frames), stop)
            except asyncio.CancelledError:
                raise
            except (OSError, ssl.SSLError, TimeoutError, EOFError) as exc:
                await self._drop()
                self._outage.failure(f"{type(exc).__name__}: {exc}; retrying")
                await _sleep_unless_stopped(self._backoff.next(), stop)
                continue
            except _Stopped:
                await self._drop()
                return False
            self._backoff.reset()
            self._outage.success()
            return True
        return False

    async def close(self) -> None:
        """Close the connection (flushing what is buffered, briefly)."""
        await self._drop()

    async def _send(self, frames: Sequence[bytes]) -> None:
        reader, writer = await self._connected()
        writer.writelines(frames)
        await asyncio.wait_for(_acknowledged(reader, writer), self.collector.ack_timeout_s)

    async def _connected(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The open connection, or a new one (a connection the collector closed is dropped)."""
        if self._writer is not None and self._reader is not None:
            if not (self._reader.at_eof() or self._writer.is_closing()):
                return self._reader, self._writer
            await self._drop()
        c = self.collector
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                c.host, c.port, ssl=c.ssl_context,
                server_hostname=c.host if c.ssl_context is not None else None,
            ),
            c.connect_timeout_s,
        )
        # drain() then waits until our buffer is empty, not merely below a high-water mark.
        writer.transport.set_write_buffer_limits(high=0)
        log.debug("connected to syslog collector %s", c)
        self._reader, self._writer = reader, writer
        return reader, writer

    async def _drop(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 2.0)


async def _acknowledged(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Wait until every byte written is acknowledged by the peer on a connection still open."""
    await writer.drain()
    sock = writer.get_extra_info("socket")
    while True:
        if reader.at_eof() or writer.is_closing():
            raise CollectorGone("the collector closed the connection")
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if sock else 0
        if error:
            raise CollectorGone(f"connection broken (errno {error})")
        if writer.transport.get_write_buffer_size() == 0 and _unacknowledged(sock) == 0:
            return
        await asyncio.sleep(ACK_POLL_S)


def _unacknowledged(sock: socket.socket | None) -> int:
    """Bytes in the kernel's send queue not yet acknowledged by the peer (0 where unknown)."""
    if sock is None or _OUTQ is None:
        return 0
    buf = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), _OUTQ, buf)
    except OSError:
        return 0
    return buf[0]


class _Stopped(Exception):
    """The stop event was set while a delivery was under way."""


async def _unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T:
    """``work``'s result, or `_Stopped` (with ``work`` cancelled) once ``stop`` is set."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    if task.cancelled():
        raise _Stopped
    return task.result()


async def _sleep_unless_stopped(seconds: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
