"""OPC UA sources: subscribing (the default) and polling, two implementations of one contract.

Both share the session code (`agent.sources.opcua.session`): connect securely where
configured, resolve ``nsu=`` node addresses and browse paths on every new session, and report
the server's start time with `Connected`, so the agent can tell a server restart from a network
blip, and the tags that did not resolve (each logged once until it resolves again).
On every new session the subscribing source subscribes, reads every tag once (a complete
`Readings`, compared with the baseline), then reports data changes as partial `Readings`
with the source timestamp and, where audit events name one, the acting user. The polling
source reads every tag every ``poll_interval_s``. Both reconnect with capped backoff and log
once per outage. Neither writes anything to the server.

``OpcuaSource(config)`` makes the source that ``config.mode`` asks for::

    source = OpcuaSource(config)        # an OpcuaSubscriptionSource unless mode: poll
    await source.run(emit)
"""

from __future__ import annotations

import asyncio
import logging
import time

from agent import metrics
from agent.runtime.backoff import Backoff
from agent.runtime.cancel import raise_if_cancel_swallowed
from agent.runtime.outage import OutageLog
from agent.sources.base import (
    Connected,
    Disconnected,
    Emit,
    Reading,
    Readings,
    utcnow,
)
from agent.sources.opcua.config import OpcuaControllerConfig
from agent.sources.opcua.session import (
    CONNECTION_ERRORS,
    OpcuaSession,
    close_quietly,
    describe,
    open_session,
    read_all,
)
from agent.sources.opcua.subscribe import SessionSubscription

__all__ = ["OpcuaPollingSource", "OpcuaSource", "OpcuaSubscriptionSource"]

log = logging.getLogger(__name__)


class OpcuaSource:
    """The session loop both OPC UA sources share; see `agent.sources.base.Source`."""

    def __new__(cls, config: OpcuaControllerConfig) -> OpcuaSource:
        if cls is OpcuaSource:
            cls = OpcuaPollingSource if config.mode == "poll" else OpcuaSubscriptionSource
        return super().__new__(cls)

    def __init__(self, config: OpcuaControllerConfig) -> None:
        self.config = config
        self.controller_id = config.id
        where = f"OPC UA server {config.id} at {config.endpoint}"
        self._outage = OutageLog(
            log, f"{where} unreachable (retrying quietly)", f"{where} reachable again"
        )
        #: Tags that did not resolve in the last session (logged once per spell).
        self._unresolved: set[str] = set()
        #: When the server's last audit event arrived, across sessions (subscribe mode).
        self._last_audit: float | None = None
        metrics.TAGS_MONITORED.labels(config.id).set(len(config.tags))

    async def run(self, emit: Emit) -> None:
        backoff = Backoff(0.5, self.config.reconnect_max_s)
        while True:
            raise_if_cancel_swallowed()
            session: OpcuaSession | None = None
            try:
                session = await open_session(self.config)
                self._outage.success()
                metrics.RECONNECTS.labels(self.controller_id).inc()
                self._log_unresolved(session.unresolved)
                await emit(Connected(utcnow(), session=session.identity,
                                     unresolved=dict(session.unresolved)))
                backoff.reset()
                await self.watch(session, emit)
            except CONNECTION_ERRORS as exc:
                reason = describe(exc)
                self._outage.failure(reason)
                metrics.CONTROLLER_UP.labels(self.controller_id).set(0)
                if session is not None:
                    await emit(Disconnected(utcnow(), reason=reason))
            finally:
                if session is not None:
                    await close_quietly(session.client)
            await asyncio.sleep(backoff.next())

    def _log_unresolved(self, unresolved: dict[str, str]) -> None:
        """Log once per spell: a tag that stops resolving at ERROR, while it stays so at DEBUG,
        once it resolves again at WARNING."""
        for tag, reason in unresolved.items():
            level = logging.DEBUG if tag in self._unresolved else logging.ERROR
            log.log(level, "%s: tag %s is not watched: %s", self.controller_id, tag, reason)
        for tag in self._unresolved - unresolved.keys():
            log.warning("%s: tag %s resolves again and is watched", self.controller_id, tag)
        self._unresolved = set(unresolved)

    async def watch(self, session: OpcuaSession, emit: Emit) -> None:
        """Report what the session sees until it is lost (raise a connection error then)."""
        raise NotImplementedError

    async def scan(self, session: OpcuaSession, emit: Emit) -> dict[str, Reading]:
        """Read every tag once and report it (complete when every tag read well)."""
        started = time.monotonic()
        values = await read_all(session, self.controller_id)
        metrics.READ_SECONDS.labels(self.controller_id).observe(time.monotonic() - started)
        complete = len(values) == len(session.nodes)
        if complete:
            metrics.CONTROLLER_UP.labels(self.controller_id).set(1)
            metrics.LAST_GOOD_READ.labels(self.controller_id).set(time.time())
        await emit(Readings(utcnow(), values, complete=complete))
        return values


class OpcuaPollingSource(OpcuaSource):
    """Reads every tag every ``poll_interval_s`` (``mode: poll``)."""

    async def watch(self, session: OpcuaSession, emit: Emit) -> None:
        interval = self.config.poll_interval_s
        while True:
            raise_if_cancel_swallowed()
            started = time.monotonic()
            await self.scan(session, emit)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))


class OpcuaSubscriptionSource(OpcuaSource):
    """One full read per session, then monitored items and audit events (``mode: subscribe``)."""

    async def watch(self, session: OpcuaSession, emit: Emit) -> None:
        subscription = SessionSubscription(self.config, session, emit,
                                           last_audit=self._last_audit)
        try:
            await subscription.start()
            # the read goes to pump, which empties it: no reading kept here for the session's life
            await subscription.pump(await self.scan(session, emit))
        finally:  # the next session's first change waits for its audit event too
            self._last_audit = subscription.last_audit
