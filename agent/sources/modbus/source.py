"""Modbus source: polls one controller (one device) with its compiled read plan, read only.

One `ModbusSource` owns one `ModbusTransport` (the device on its line: pacing, backoff, the
answers translated); the line (`agent.sources.modbus.line`) owns the connection, its own for
a Modbus TCP device, shared by the devices on one serial port or RTU over TCP gateway.
Each scan sends the plan's requests one at a time and decodes the answers with decoders
compiled once at start-up. A request the device answers with a Modbus exception (illegal data
address, device busy, gateway errors) affects only its own tags: they go to ``Readings.bad``
with the reason (the watcher reports the monitoring gap), the rest of the plan is read, and the
request is sent again on every scan; each request's refusal is logged once, at ERROR, and its
end at INFO. A damaged answer (too short) gives each tag its value or its own reason. The
connection is re-made with capped backoff and each outage is logged once. There is no write
path here.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from agent import metrics
from agent.contract import TagValue
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
from agent.sources.modbus.config import ModbusControllerConfig
from agent.sources.modbus.decode import compile_request, decode_tags
from agent.sources.modbus.line import ModbusLines
from agent.sources.modbus.plan import RawValues, ReadRequest, plan_reads
from agent.sources.modbus.transport import (
    ADDRESS_CODES,
    CONNECTION_ERRORS,
    ModbusTransport,
    Refusal,
)

log = logging.getLogger(__name__)


class ModbusSource:
    """Polls a Modbus device; see `agent.sources.base.Source`."""

    def __init__(self, config: ModbusControllerConfig, lines: ModbusLines | None = None) -> None:
        """``lines``: the agent's lines, so that the devices on one serial port or gateway
        share its one connection; None: a line of its own (as every Modbus TCP device has)."""
        self.config = config
        self.controller_id = config.id
        self.plan: list[ReadRequest] = plan_reads(config.tags, max_gap=config.max_gap)
        self._decoders = [compile_request(request) for request in self.plan]
        #: Per plan index, the last raw answer and its readings: setpoints rarely change, so
        #: an unchanged answer reuses them and the watcher compares the very same objects.
        self._last: list[tuple[RawValues, dict[str, Reading]] | None] = [None] * len(self.plan)
        #: The last scan's readings per answered request, and all of them in one dict.
        self._scan: tuple[list[dict[str, Reading]], dict[str, Reading]] = ([], {})
        #: Plan indexes the device refused in the last scan (logged when it starts and ends).
        self._refused: dict[int, Refusal] = {}
        self.transport = ModbusTransport(config, lines.line_for(config) if lines else None)
        where = f"Modbus controller {config.id} at {config.endpoint}"
        self._outage = OutageLog(
            log, f"{where} unreachable (retrying quietly)", f"{where} reachable again"
        )
        metrics.TAGS_MONITORED.labels(config.id).set(len(config.tags))
        self._unreadable = metrics.TAGS_UNREADABLE.labels(config.id)
        self._unreadable.set(0)

    async def run(self, emit: Emit) -> None:
        transport = self.transport
        while True:
            raise_if_cancel_swallowed()
            connected = False
            try:
                await transport.connect()
                connected = True
                metrics.RECONNECTS.labels(self.controller_id).inc()
                await emit(Connected(utcnow(), session=self.config.endpoint))
                await self._poll(emit)
            except CONNECTION_ERRORS as exc:
                self._outage.failure(str(exc) or type(exc).__name__)
                metrics.CONTROLLER_UP.labels(self.controller_id).set(0)
                if connected:
                    await emit(Disconnected(utcnow(), reason=str(exc) or type(exc).__name__))
            finally:
                transport.close()
            await transport.wait_to_reconnect()

    async def _poll(self, emit: Emit) -> None:
        interval = self.config.poll_interval_s
        read_seconds = metrics.READ_SECONDS.labels(self.controller_id)
        deadline = time.monotonic()
        while True:
            raise_if_cancel_swallowed()
            started = time.monotonic()
            values, bad = await self.scan()
            read_seconds.observe(time.monotonic() - started)
            # Up once it answers, not once it accepts a connection: a device that takes the
            # connection and then never answers is one outage, not a flapping one.
            self._outage.success()
            self.transport.reset_backoff()
            metrics.CONTROLLER_UP.labels(self.controller_id).set(1)
            metrics.LAST_GOOD_READ.labels(self.controller_id).set(time.time())
            self._unreadable.set(len(bad))
            await emit(Readings(utcnow(), values, complete=True, bad=bad))
            deadline = _next_deadline(deadline, interval, time.monotonic())
            await asyncio.sleep(deadline - time.monotonic())

    async def scan(self) -> tuple[dict[str, Reading], dict[str, str]]:
        """Read every request of the plan once: the readings, and the tags without one (why).

        A lost connection raises (one of `CONNECTION_ERRORS`); anything the device answers,
        an exception included, is part of a full scan.
        """
        parts: list[dict[str, Reading]] = []  # per answered request, in plan order
        bad: dict[str, str] = {}
        refused: dict[int, Refusal] = {}
        for index, request in enumerate(self.plan):
            answer = await self.transport.read(request, paced=index > 0)
            if isinstance(answer, Refusal):
                refused[index] = answer
                bad.update(dict.fromkeys((t.name for t in request.tags), answer.reason))
                continue
            if len(answer) != request.count:  # a damaged answer: tag by tag
                decoded, broken = decode_tags(request, answer)
                parts.append({name: Reading(v) for name, v in decoded.items()})
                bad.update(broken)
                self._last[index] = None
                continue
            parts.append(self._readings(index, answer))
        if refused or self._refused:
            self._log_refusals(refused, len(bad))
        return self._merged(parts), bad

    def _merged(self, parts: list[dict[str, Reading]]) -> dict[str, Reading]:
        """One dict of a scan's readings; a copy of the last scan's when every request gave
        the very same readings (the usual scan: nothing changed), which costs one C-level
        copy instead of an insert per tag."""
        last_parts, last_values = self._scan
        if len(parts) == len(last_parts) and all(
            p is q for p, q in zip(parts, last_parts, strict=True)
        ):
            return last_values.copy()
        values: dict[str, Reading] = {}
        for part in parts:
            values.update(part)
        self._scan = (parts, values.copy())  # a copy of its own: the caller may change its own
        return values

    def _log_refusals(self, refused: dict[int, Refusal], unreadable: int) -> None:
        """One ERROR line for the requests refused since the last scan, one INFO line for those
        answered again; a refusal that goes on is logged at DEBUG only."""
        new = {i: r for i, r in refused.items() if i not in self._refused}
        back = [i for i in self._refused if i not in refused]
        if new:
            what = "; ".join(f"{self._span(i)}: {r.reason}" for i, r in list(new.items())[:5])
            more = f"; and {len(new) - 5} more" if len(new) > 5 else ""
            hint = " (if it lasts, check their addresses in the config)" if any(
                r.code in ADDRESS_CODES for r in new.values()) else ""
            log.error(
                "Modbus controller %s refuses %s%s%s; %d tags are unreadable, reported as a "
                "monitoring gap, and asked for again every scan",
                self.controller_id, what, more, hint, unreadable,
            )
        elif refused:
            log.debug("Modbus controller %s still refuses %d requests", self.controller_id,
                      len(refused))
        if back:
            log.info(
                "Modbus controller %s answers %s again", self.controller_id,
                ", ".join(self._span(i) for i in back),
            )
        self._refused = dict(refused)

    def _span(self, index: int) -> str:
        request = self.plan[index]
        last = request.start + request.count - 1
        names = ", ".join(t.name for t in request.tags[:4])
        more = ", ..." if len(request.tags) > 4 else ""
        return f"{request.table} {request.start}..{last} (tags {names}{more})"

    def _readings(self, index: int, raw: RawValues) -> dict[str, Reading]:
        """The readings of one answer; those whose value did not change are the last ones."""
        last = self._last[index]
        if last is not None and last[0] == raw:
            return last[1]
        previous = last[1] if last is not None else {}
        readings: dict[str, Reading] = {}
        for name, value in self._decoders[index](raw).items():
            old = previous.get(name)
            readings[name] = old if old is not None and _same(old.value, value) else Reading(value)
        self._last[index] = (raw, readings)
        return readings


def _next_deadline(deadline: float, interval: float, now: float) -> float:
    """The next scan's start on a fixed schedule, so the loop's own lag never adds up.

    A scan that overran its slot is followed at once, and the schedule restarts from
    there instead of bursting to catch up the slots it missed.
    """
    deadline += interval
    return deadline if deadline > now else now


def _same(old: TagValue, new: TagValue) -> bool:
    """True when `new` is indistinguishable from `old` (so 0.0 is not -0.0, NaN never same)."""
    if type(old) is not type(new) or old != new:
        return False
    if isinstance(new, float) and new == 0.0:
        return math.copysign(1.0, old) == math.copysign(1.0, new)  # type: ignore[arg-type]
    return True
