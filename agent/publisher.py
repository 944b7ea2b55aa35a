"""Drain the spool to Kafka: acks=all, in order per controller, removing only what was acknowledged.

The :class:`SpoolPublisher` owns one background task. It sends the oldest rows of the spool as
a batch (``producer.send`` for each, then awaits every delivery), removes from the spool the
longest acknowledged prefix, and on any failure starts again from the oldest unacknowledged row.
A resend therefore carries the same bytes and the same ``event_id``; consumers dedupe on it.
Kafka keeps one controller's events in one partition (key ``<site>/<controller>``) and aiokafka
has one request in flight per partition, so per-controller order holds.

The broker being down is normal life at the edge, not an error to raise: the task retries with
capped exponential backoff, logs the outage once at ERROR (repeats at DEBUG until a success),
and ``otwatch_agent_broker_up`` says whether the broker is reachable. When TLS is configured and
the connection fails, the failure is probed and explained in terms of the setting to fix.

Example::

    >>> pub = SpoolPublisher(spool, KafkaSettings(enable_idempotence=False))
    >>> await pub.start()
    >>> spool.append(events); pub.wake()
    >>> await pub.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter as MetricCounter
from prometheus_client import Gauge

from agent.kafka_settings import (
    BrokerTlsError,
    DeliveryError,
    KafkaSettings,
    explain_tls_failure,
)
from agent.spool import Row, Spool

log = logging.getLogger(__name__)

PUBLISHED = MetricCounter(
    "otwatch_agent_published_total", "Events acknowledged by the broker", ["topic"]
)
PUBLISH_FAILURES = MetricCounter(
    "otwatch_agent_publish_failures_total", "Failed attempts to reach or publish to the broker"
)
BROKER_UP = Gauge("otwatch_agent_broker_up", "1 when the last contact with the broker succeeded")

#: Exceptions that mean "the broker or the network is not there right now": retried, never raised.
TRANSIENT: tuple[type[BaseException], ...] = (KafkaError, OSError, TimeoutError, DeliveryError)


def backoff_s(attempt: int, base_s: float, cap_s: float) -> float:
    """Capped exponential backoff: base, 2*base, 4*base, ... up to ``cap_s``."""
    return float(min(cap_s, base_s * 2 ** min(attempt, 30)))


def acknowledged_prefix(results: Sequence[object]) -> int:
    """How many leading results are successes; everything after the first failure is resent."""
    for i, result in enumerate(results):
        if isinstance(result, BaseException):
            return i
    return len(results)


class OutageLog:
    """Log an outage once at ERROR, repeats at DEBUG, and the recovery once at INFO."""

    def __init__(self, down: str, up: str) -> None:
        self.down_text = down
        self.up_text = up
        self.down = False

    def failure(self, message: str) -> None:
        PUBLISH_FAILURES.inc()
        if self.down:
            log.debug("%s (still): %s", self.down_text, message)
        else:
            log.error("%s: %s", self.down_text, message)
            self.down = True

    def success(self) -> None:
        if self.down:
            log.info("%s", self.up_text)
        self.down = False


#: aiokafka logs every failed reconnect at ERROR; the outage is ours to report, once.
KAFKA_CLIENT_LOGGERS = (
    "aiokafka",
    "aiokafka.conn",
    "aiokafka.client",
    "aiokafka.cluster",
    "aiokafka.producer.sender",
    "aiokafka.producer.producer",
    "aiokafka.admin.client",
)


class _DemoteToDebug(logging.Filter):
    """Rewrite a record's level to DEBUG so handlers at INFO and above drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


_DEMOTE = _DemoteToDebug()


def demote_kafka_client_logs() -> None:
    """Keep aiokafka's per-attempt connection errors out of the agent's log (at DEBUG instead).

    The publisher reports an outage once, with what it means for the spool; aiokafka would
    otherwise log an ERROR for every reconnect attempt. Idempotent.
    """
    for name in KAFKA_CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if _DEMOTE not in logger.filters:
            logger.addFilter(_DEMOTE)


async def start_producer(settings: KafkaSettings, kwargs: dict[str, Any]) -> AIOKafkaProducer:
    """Start a producer, or raise: translated into a TLS explanation when the cause is TLS."""
    producer = AIOKafkaProducer(**kwargs)
    try:
        await producer.start()
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await producer.stop()
        if isinstance(exc, Exception) and settings.tls is not None:
            explained = await diagnose_tls(settings)
            if explained is not None:
                raise explained from exc
        raise
    return producer


async def ensure_topics(settings: KafkaSettings, names: Sequence[str]) -> None:
    """Create missing topics if the broker allows it; tolerate any refusal (logged, not raised)."""
    if not settings.create_topics:
        return
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(**settings.admin_kwargs())
    try:
        await admin.start()
        new = [
            NewTopic(n, settings.topic_partitions, settings.topic_replication_factor) for n in names
        ]
        response = await admin.create_topics(new)
        for entry in getattr(response, "topic_errors", []):
            if entry[1] not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS
                log.warning("cannot create topic %s (Kafka error code %s)", entry[0], entry[1])
    except Exception as exc:
        log.warning(
            "cannot create topics %s (%s); the broker may create them on demand", names, exc
        )
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def log_task_crash(task: asyncio.Task[None]) -> None:
    """Done-callback: a background task must never die silently."""
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s crashed", task.get_name(), exc_info=task.exception())


def _api_versions_request() -> bytes:
    """A Kafka ApiVersions v0 request: the smallest request that proves the session works."""
    client_id = b"otwatch-tls-probe"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    return struct.pack(">i", len(body)) + body


def _first_server(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    return host.strip("[]"), int(port)


async def diagnose_tls(settings: KafkaSettings, limit_s: float = 5.0) -> BrokerTlsError | None:
    """Open one TLS session to the first bootstrap server and explain a failure by its setting.

    aiokafka reports a failed TLS handshake only as "unable to bootstrap"; this probe finds the
    setting to fix. Returns None when TLS works or the failure is not a TLS one (network down).
    """
    if settings.tls is None:
        return None
    host, port = _first_server(settings.bootstrap_servers)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=settings.tls.ssl_context()), limit_s
        )
    except ssl.SSLError as exc:
        return BrokerTlsError(explain_tls_failure(settings, host, port, exc))
    except (OSError, TimeoutError):
        return None  # not a TLS problem: nothing listens, or the network is down
    try:
        writer.write(_api_versions_request())
        await writer.drain()
        await asyncio.wait_for(reader.readexactly(4), limit_s)
    except ssl.SSLError as exc:
        return BrokerTlsError(explain_tls_failure(settings, host, port, exc))
    except (OSError, asyncio.IncompleteReadError):
        # TLS 1.3: a refused client certificate shows after the handshake, as a dropped session
        return BrokerTlsError(explain_tls_failure(settings, host, port, None))
    except TimeoutError:
        return None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return None


class SpoolPublisher:
    """Owns the drain task from the spool to Kafka; see the module docstring."""

    def __init__(
        self,
        spool: Spool,
        settings: KafkaSettings,
        *,
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
    ) -> None:
        self.spool = spool
        self.settings = settings
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.last_error: str | None = None
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._connected = False
        where = f"Kafka at {settings.bootstrap_servers}"
        self._outage = OutageLog(f"{where} unreachable", f"{where} reachable again")

    @property
    def connected(self) -> bool:
        """True when the last contact with the broker succeeded."""
        return self._connected

    async def start(self) -> None:
        """Start the drain task. Raises only for unusable settings (KafkaSettingsError)."""
        if self._task is not None:
            return
        self._kwargs = self.settings.producer_kwargs()  # fail fast on a bad setting
        demote_kafka_client_logs()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="otwatch-spool-publisher")
        self._task.add_done_callback(log_task_crash)

    def wake(self) -> None:
        """Tell the drain that the spool has new events (no wait for the poll tick)."""
        self._wake.set()

    async def stop(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - the agreed interface
        """Stop within ``timeout`` s; unacknowledged events stay in the spool for the next start."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wake.set()
            _done, pending = await asyncio.wait({task}, timeout=timeout / 2)
            if pending:
                task.cancel()
                await asyncio.wait({task}, timeout=timeout / 4)
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), timeout=max(timeout / 4, 0.5))
            except TRANSIENT as exc:
                log.warning("Kafka producer did not close cleanly within the stop timeout: %r", exc)
        self._set_connected(False)

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            self.spool.refresh_gauges(time.time())  # the oldest age grows during an outage too
            try:
                await self._drain()
            except TRANSIENT as exc:
                self._on_failure(exc)
                delay = backoff_s(
                    attempt,
                    self.settings.retry_backoff_ms / 1000,
                    self.settings.reconnect_backoff_max_s,
                )
                attempt += 1
                await self._sleep(delay)
                continue
            attempt = 0
            await self._sleep(self.poll_interval_s)

    async def _sleep(self, seconds: float) -> None:
        """Sleep until the tick, a wake() or stop(); whichever comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _drain(self) -> None:
        """Send until the spool is empty (or stop is asked); raise on the first failure."""
        producer = await self._ensure_producer()
        while not self._stopping:
            self._wake.clear()
            rows = self.spool.peek(self.batch_size)
            if not rows:
                return
            await self._send_batch(producer, rows)
            self._on_success()

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            self._producer = await start_producer(self.settings, self._kwargs)
            self._on_success()
            await ensure_topics(
                self.settings, [self.spool.topics.suspect, self.spool.topics.authorized]
            )
        return self._producer

    async def _send_batch(self, producer: AIOKafkaProducer, rows: list[Row]) -> None:
        """Send all rows, await every delivery, ack the acknowledged prefix, raise a failure."""
        futures: list[asyncio.Future[Any]] = []
        send_error: BaseException | None = None
        for _row_id, topic, key, value in rows:
            try:
                futures.append(await producer.send(topic, value, key=key))
            except TRANSIENT as exc:
                send_error = exc
                break
        results = await asyncio.gather(*futures, return_exceptions=True)
        n_ok = acknowledged_prefix(results)
        acked = rows[:n_ok]
        self.spool.ack([row[0] for row in acked])
        for topic, count in Counter(row[1] for row in acked).items():
            PUBLISHED.labels(topic=topic).inc(count)
        if n_ok < len(futures):
            failure = results[n_ok]
            assert isinstance(failure, BaseException)
            raise failure
        if send_error is not None:
            raise send_error

    def _on_success(self) -> None:
        self._outage.success()
        self.last_error = None
        self._set_connected(True)

    def _on_failure(self, exc: BaseException) -> None:
        message = str(exc) or type(exc).__name__
        self.last_error = message
        self._outage.failure(
            f"{message}; {self.spool.depth()} events wait in the spool and will be sent in order "
            "when it is back"
        )
        self._set_connected(False)

    def _set_connected(self, up: bool) -> None:
        self._connected = up
        BROKER_UP.set(1 if up else 0)
