"""The running agent: sources → watchers → spool → publisher, plus metrics and heartbeats.

Every background task is owned (`agent.runtime.tasks.OwnedTasks`): started here, watched by a
done-callback that stops the agent if a task dies, cancelled and awaited (bounded) on stop.

Start-up either completes or fails with one `agent.errors.StartupError` (or another
`OtwatchError`) whose message names the setting and the fix: what a retry can mend (the
metrics port still held by an agent that is exiting) is retried a bounded number of times
first; whatever was started is stopped again. A stop logs one line. The broker and the
controllers are not start-up steps: being away is normal life, retried in the background and
logged once per outage.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from agent import __version__
from agent import metrics as agent_metrics
from agent.approvals import ApprovalBook, ApprovalTopicSource, MatchPolicy, UsedApprovalsSource
from agent.approvals.targets import target_checker
from agent.baseline import BaselineStore, encode_tags
from agent.config import AgentConfig, ModbusControllerConfig
from agent.contract import Heartbeat, SuspectChange
from agent.errors import StartupError
from agent.heartbeat import HeartbeatSender
from agent.keys import key_path, load_signer
from agent.publisher import SpoolPublisher
from agent.runtime.backoff import Backoff
from agent.runtime.build_info import set_build_info
from agent.runtime.cancel import raise_if_cancel_swallowed
from agent.runtime.gc_tuning import AGENT_THRESHOLDS, freeze_long_lived, tune_for_throughput
from agent.runtime.tasks import OwnedTasks, task_counter
from agent.sources.base import Reading, Source
from agent.sources.modbus import ModbusLines, ModbusSource
from agent.sources.opcua import OpcuaSource
from agent.spool import Spool
from agent.watcher import AgentIdentity, ControllerWatcher

log = logging.getLogger(__name__)

#: How often the baseline snapshot is written (changes are journalled with their events).
BASELINE_SAVE_INTERVAL_S = 5.0
#: The file that says the agent has read every controller once (the demo waits for it).
READY_FILE = "ready"
#: How long the watchers wait at start for the approval topics to be read (they start at once
#: when the broker is away: a change found meanwhile is judged with what is known).
APPROVAL_TOPICS_WAIT_S = 15.0
#: Attempts to bind the metrics port before start-up fails (an agent that is exiting may
#: still hold it), and the first wait between them (doubling).
METRICS_BIND_ATTEMPTS = 5
METRICS_BIND_FIRST_WAIT_S = 0.5


def make_source(
    config: AgentConfig, controller_id: str, modbus_lines: ModbusLines | None = None
) -> Source:
    """The controller's source; Modbus devices on one serial port or gateway share the
    one connection ``modbus_lines`` holds for it."""
    ctl = config.controller(controller_id)
    if isinstance(ctl, ModbusControllerConfig):
        return ModbusSource(ctl, modbus_lines)
    return OpcuaSource(ctl)


def approval_book(config: AgentConfig) -> ApprovalBook:
    """The agent's approvals: its files (and topic), each record checked against the agent's
    own controllers and tags as ``approvals validate --config`` does; one that can never
    match is refused and logged once with its fix, and the agent runs on (see
    `agent.approvals.book`)."""
    policy = MatchPolicy(
        require_signed=config.approvals.require_signed,
        topic_require_signed=config.approvals.topic_require_signed,
        clock_skew_s=config.approvals.clock_skew_s,
        trusted_keys=config.approvals.trusted_keys,
    )
    return ApprovalBook(
        config.approvals.files,
        policy=policy,
        state_path=config.agent.state_dir / "approvals-used.json",
        uses_on_kafka=config.approvals.record_uses_on_kafka,
        refuse=target_checker(config, "this agent's config"),
    )


def approval_topics(
    config: AgentConfig, book: ApprovalBook, same_outage: Callable[[], bool]
) -> list[ApprovalTopicSource | UsedApprovalsSource]:
    """The topic readers the approvals section asks for: the approvals themselves
    (``from_topic``) and the uses of single-use approvals (``record_uses_on_kafka``)."""
    kwargs = {k: v for k, v in config.kafka.consumer_kwargs().items() if k != "bootstrap_servers"}
    common: dict[str, Any] = {
        "bootstrap_servers": config.kafka.bootstrap_servers, "consumer_kwargs": kwargs,
        "same_outage": same_outage,
    }
    readers: list[ApprovalTopicSource | UsedApprovalsSource] = []
    if config.approvals.from_topic:
        readers.append(ApprovalTopicSource(book, topic=config.topics.approvals, **common))
    if config.approvals.record_uses_on_kafka:
        readers.append(UsedApprovalsSource(book, topic=config.topics.approvals_used, **common))
    return readers


class Agent:
    """One edge agent process. `await Agent(config).run()` until cancelled or `stop()`."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        state = config.agent.state_dir
        try:
            state.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError(
                f"agent.state_dir: cannot create {state} ({exc.strerror}); fix: create it, "
                "writable by the agent's user, or point agent.state_dir elsewhere"
            ) from None
        self.signer, made = load_signer(config)
        log.info(
            "events are signed with key %s (%s %s; otwatch-agent keys show prints its public key)",
            self.signer.key_id, "new key made in" if made else "key file", key_path(config),
        )
        self.spool = Spool(
            state / "spool.db", topics=config.topics, signer=self.signer,
            max_events=config.spool.max_events, max_bytes=config.spool.max_bytes,
        )
        self.baseline = BaselineStore(state / "baseline.json")
        replayed = self.baseline.replay(self.spool.baseline_journal())
        if replayed:
            log.info("baseline: %d journalled entries replayed over the snapshot", replayed)
        self.approvals = approval_book(config)
        uses = config.approvals.record_uses_on_kafka
        self.publisher = SpoolPublisher(
            self.spool, config.kafka,
            barrier_topics=frozenset({config.topics.approvals_used} if uses else ()),
        )
        self.approval_topics = approval_topics(
            config, self.approvals, same_outage=lambda: not self.publisher.connected
        )
        self.heartbeat = HeartbeatSender(
            config.kafka, config.topics.heartbeat, self._heartbeat, config.heartbeat.interval_s,
            same_outage=lambda: not self.publisher.connected,
        )
        identity = AgentIdentity(config.agent.id, config.agent.site)
        self.watchers = {
            ctl.id: ControllerWatcher(
                identity, ctl, self.baseline.get(ctl.id), self.approvals,
                functools.partial(self._store, ctl.id), config.events.limits,
            )
            for ctl in config.controllers
        }
        #: One connection per serial port or RTU over TCP gateway, whatever its devices.
        self.modbus_lines = ModbusLines()
        self.tasks = OwnedTasks("agent", log=log, on_crash=lambda _task, _exc: self.stop())
        self._stopped = asyncio.Event()
        self._last_save = 0.0
        self._metrics_server: WSGIServer | None = None

    async def _store(
        self, controller_id: str, events: list[SuspectChange], moved: Mapping[str, Reading]
    ) -> None:
        """Durable before acknowledged: the events and the baseline entries they move, in one
        spool transaction; only then may the watcher's baseline move on."""
        journal = [(controller_id, encode_tags(moved))] if moved else []
        # The uses of single-use approvals these verdicts (or earlier ones) made go ahead of the
        # events, in the same transaction (agent.approvals.uses).
        uses = self.approvals.pending_uses()
        agent_id, topic = self.config.agent.id, self.config.topics.approvals_used
        ahead = [
            (topic, u.kafka_key(), u.model_copy(update={"agent_id": agent_id}).to_json())
            for u in uses
        ]
        # SpoolFull: nothing counts as detected (the uses stay pending)
        self.spool.append(events, baseline=journal, ahead=ahead, numbered=False)
        self.approvals.uses_spooled(uses)
        self.publisher.wake()
        if not log.isEnabledFor(logging.INFO):  # its arguments cost ~1 µs an event unlogged
            return
        for ev in events:
            log.info(
                "%s %s/%s %s: %r -> %r (%s)", ev.verdict.value, ev.controller.id, ev.tag.name,
                ev.change_kind.value, ev.old_value, ev.new_value, ev.verdict_reason,
            )

    def _heartbeat(self) -> Heartbeat:
        problems = self._problems()
        return Heartbeat(
            agent_id=self.config.agent.id,
            version=__version__,
            site=self.config.agent.site,
            controllers_up=sum(w.up for w in self.watchers.values()),
            controllers_total=len(self.watchers),
            spool_depth=self.spool.depth(),
            last_seq=self.spool.last_seq(),
            health="degraded" if problems else "ok",
            spool_quarantined=self.spool.quarantined(),
            tags_unreadable=sum(len(w.unreadable) for w in self.watchers.values()),
            problems=problems,
        )

    def _problems(self) -> list[str]:
        """What is wrong with this agent, in words, for the heartbeat."""
        problems = []
        held = self.spool.quarantined()
        if held:
            problems.append(
                f"{held} events refused by the broker for good are kept in the spool's "
                "quarantine, not sent (otwatch-agent spool show)"
            )
        for cid, watcher in self.watchers.items():
            if watcher.unreadable:
                reasons = sorted({reason for _, reason in watcher.unreadable.values()})
                problems.append(
                    f"controller {cid}: {len(watcher.unreadable)} tags unreadable "
                    f"({'; '.join(reasons[:3])})"
                )
        return problems

    async def run(self) -> None:
        tune_for_throughput(AGENT_THRESHOLDS)
        started = False
        try:
            await self._start()
            started = True
            await self._stopped.wait()
        finally:
            await self._shutdown(started)
        if self.tasks.failure is not None:
            raise self.tasks.failure

    async def _start(self) -> None:
        agent_metrics.ASYNCIO_TASKS.set_function(task_counter())
        set_build_info("agent")
        if self.config.metrics.port:
            self._metrics_server = await self._serve_metrics()
        await self.publisher.start()
        await self.heartbeat.start()
        for reader in self.approval_topics:
            await reader.start()
        await self._wait_for_approval_topics()
        for cid, watcher in self.watchers.items():
            self.tasks.start(self._watch(cid, watcher), f"watch {cid}")
        self.tasks.start(self._housekeeping(), "housekeeping")

    async def _wait_for_approval_topics(self) -> None:
        """Judge the first changes with the approvals (and the uses of single-use ones) read
        from Kafka: until each topic is read, a first attempt to read it failed, the bound, or
        a stop."""
        if not self.approval_topics:
            return
        waits: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(*(r.wait_settled() for r in self.approval_topics))
        )
        stop: asyncio.Future[Any] = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait({waits, stop}, timeout=APPROVAL_TOPICS_WAIT_S,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (waits, stop):
                future.cancel()
            await asyncio.gather(waits, stop, return_exceptions=True)

    async def _serve_metrics(self) -> WSGIServer:
        """Bind the metrics endpoint, retrying a few times while the port is taken."""
        host, port = self.config.metrics.host, self.config.metrics.port
        backoff = Backoff(METRICS_BIND_FIRST_WAIT_S, 4.0)
        for attempt in range(1, METRICS_BIND_ATTEMPTS + 1):
            try:
                server, _thread = start_http_server(port, addr=host)
            except OSError as exc:
                if attempt == METRICS_BIND_ATTEMPTS:
                    raise StartupError(
                        f"metrics.port: cannot serve metrics on {host}:{port} ({exc.strerror}, "
                        f"{attempt} attempts); fix: stop the process that holds the port, or "
                        "set metrics.port to a free one (0 turns the endpoint off)"
                    ) from None
                log.debug("metrics port %s:%s: %s; trying again", host, port, exc)
                await asyncio.sleep(backoff.next())
            else:
                return server
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """Ask the agent to stop (a task that fails asks too); `run` then shuts down."""
        self._stopped.set()
        self.publisher.stop_soon()  # an outage noticed while stopping is not news

    async def _watch(self, controller_id: str, watcher: ControllerWatcher) -> None:
        await make_source(self.config, controller_id, self.modbus_lines).run(watcher.on_event)

    async def _housekeeping(self) -> None:
        ready = self.config.agent.state_dir / READY_FILE
        ready.unlink(missing_ok=True)
        while True:
            raise_if_cancel_swallowed()
            await asyncio.sleep(0.5)
            self.approvals.refresh()
            now = datetime.now(UTC)
            for watcher in self.watchers.values():
                await watcher.tick(now)
            if not ready.exists() and all(w.up for w in self.watchers.values()):
                ready.write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
                freeze_long_lived()  # the first complete scan built what lives on
            self._maybe_save_baseline()

    def _maybe_save_baseline(self) -> None:
        now = time.monotonic()
        if now - self._last_save >= BASELINE_SAVE_INTERVAL_S:
            self._save_baseline()
            self._last_save = now

    def _save_baseline(self) -> None:
        """A snapshot of every baseline; the journal it now holds is trimmed after it."""
        head = self.spool.baseline_journal_head()
        self.baseline.save()
        self.spool.trim_baseline_journal(head)

    async def _shutdown(self, started: bool) -> None:
        await self.tasks.stop(timeout_s=5.0)
        for reader in self.approval_topics:
            await reader.stop(grace_s=5.0)
        await self.heartbeat.stop()
        await self.publisher.stop()
        self._save_baseline()
        waiting = self.spool.depth()
        self.spool.close()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
        (self.config.agent.state_dir / READY_FILE).unlink(missing_ok=True)
        if not started:
            return  # the start-up error is the one line
        log.info(
            "agent %s stopped; %s", self.config.agent.id,
            f"{waiting} events wait in the spool and are sent after the next start" if waiting
            else "every event was delivered",
        )
