"""Start a Kafka client: once (`start_client`), or until the broker answers (`start_with_retry`).

Each attempt builds a new client (a client whose start failed is stopped and dropped: aiokafka
does not promise that one can start again). When TLS is configured and the start fails, the
connection is probed and the failure explained by the setting to fix (`BrokerTlsError`).

The agent's producers start with `start_client` inside their own retry loops (the spool
publisher retries its deliveries, not only its start); the classifier's producer and consumers
start with `start_with_retry`. Both wait with `agent.runtime.backoff.Backoff` and log with
`agent.runtime.outage.OutageLog`.

Example::

    >>> consumer = await start_with_retry(
    ...     lambda: AIOKafkaConsumer(**settings.consumer_kwargs()), settings, "consumer", stop)
    >>> if consumer is None: return          # stop() came first
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

from aiokafka.errors import KafkaError

from agent.kafka.errors import DeliveryError
from agent.kafka.settings import KafkaSettings
from agent.kafka.tls_probe import diagnose_tls
from agent.runtime.backoff import Backoff
from agent.runtime.outage import OutageLog

log = logging.getLogger(__name__)

#: Exceptions that mean "the broker or the network is not there right now": retried, not raised.
TRANSIENT: tuple[type[BaseException], ...] = (KafkaError, OSError, TimeoutError, DeliveryError)


class KafkaClient(Protocol):
    """What aiokafka's producer, consumer and admin client have in common here."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


C = TypeVar("C", bound=KafkaClient)


async def start_client(make: Callable[[], C], settings: KafkaSettings) -> C:
    """Build a client with ``make`` and start it, or stop it and raise (a TLS failure as a
    `BrokerTlsError` that names the setting to fix)."""
    client = make()
    try:
        await client.start()
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await client.stop()
        if isinstance(exc, Exception) and settings.tls is not None:
            explained = await diagnose_tls(settings)
            if explained is not None:
                raise explained from exc
        raise
    return client


async def start_with_retry(
    make: Callable[[], C],
    settings: KafkaSettings,
    what: str,
    stop: asyncio.Event | None = None,
    *,
    backoff: Backoff | None = None,
) -> C | None:
    """Start a client, retrying with capped backoff while the broker cannot be reached.

    The first failure is logged at ERROR, repeats at DEBUG, the start at INFO after an outage.
    Returns None, without a client, once ``stop`` is set before a start succeeded.
    """
    backoff = backoff or Backoff(first_s=0.5, cap_s=10.0)
    where = f"Kafka {what} ({settings.bootstrap_servers})"
    outage = OutageLog(log, f"{where} cannot start", f"{where} started")
    while stop is None or not stop.is_set():
        try:
            client = await start_client(make, settings)
        except TRANSIENT as exc:
            outage.failure(f"{exc or type(exc).__name__}; retrying")
            await _sleep_unless_stopped(backoff.next(), stop)
            continue
        outage.success()
        return client
    return None


async def _sleep_unless_stopped(seconds: float, stop: asyncio.Event | None) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
