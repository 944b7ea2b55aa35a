"""OPC UA source: reads one server's nodes, read only, resolving namespaces on every connect.

A PLC program download often restarts the OPC UA server and can renumber its namespaces, so
nodes are configured as ``nsu=<namespace uri>;s=<id>`` and resolved to indexes each time a
session is made. Reads are chunked to ``max_nodes_per_read`` (servers cap operations per
request). The session's server start time (``ServerStatus.StartTime``) is reported with
`Connected`, so the agent can tell a server restart from a network blip.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaError

from agent import metrics
from agent.sources.opcua_config import OpcuaControllerConfig, OpcuaTag
from agent.errors import ControllerUnreachable, TagConfigError
from agent.events import TagValue
from agent.sources.base import (
    Connected,
    Disconnected,
    Emit,
    OutageLog,
    Reading,
    Readings,
    backoff_delays,
    utcnow,
)

log = logging.getLogger(__name__)

_SERVER_START_TIME = ua.NodeId(ua.Int32(ObjectIds.Server_ServerStatus_StartTime))


def resolve_node_id(address: str, namespaces: list[str], controller: str, tag: str) -> ua.NodeId:
    """`nsu=<uri>;s=X` or `ns=<i>;s=X` to a NodeId for this session's namespace array."""
    if not address.startswith("nsu="):
        return ua.NodeId.from_string(address)
    uri, _, rest = address[4:].partition(";")
    try:
        index = namespaces.index(uri)
    except ValueError:
        raise TagConfigError(
            f"namespace {uri!r} of tag {tag} is not on the server (it has {len(namespaces)} "
            "namespaces); fix the node address or the server",
            controller=controller,
            tag=tag,
        ) from None
    return ua.NodeId.from_string(f"ns={index};{rest}")


def plain_value(value: object) -> TagValue:
    """OPC UA variants to JSON-friendly values (LocalizedText, enums, byte strings, arrays)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, ua.LocalizedText):
        return value.Text
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return {"items": [plain_value(v) for v in value]}
    return str(value)


class OpcuaSource:
    """Polls an OPC UA server; see `agent.sources.base.Source`."""

    def __init__(self, config: OpcuaControllerConfig) -> None:
        self.config = config
        self.controller_id = config.id
        self._outage = OutageLog(log, f"OPC UA server {config.id} at {config.endpoint}")
        metrics.TAGS_MONITORED.labels(config.id).set(len(config.tags))

    async def run(self, emit: Emit) -> None:
        next_delay = backoff_delays(0.5, self.config.reconnect_max_s)
        while True:
            client = Client(self.config.endpoint, timeout=self.config.timeout_s)
            connected = False
            try:
                await client.connect()
                connected = True
                nodes = await self._resolve(client)
                started = await client.get_node(_SERVER_START_TIME).read_value()
                self._outage.recovered()
                metrics.RECONNECTS.labels(self.controller_id).inc()
                await emit(Connected(utcnow(), session=f"server-start:{started}"))
                next_delay = backoff_delays(0.5, self.config.reconnect_max_s)
                await self._poll(client, nodes, emit)
            except (OSError, TimeoutError, UaError, ControllerUnreachable) as exc:
                reason = str(exc) or type(exc).__name__
                self._outage.failed(reason)
                metrics.CONTROLLER_UP.labels(self.controller_id).set(0)
                if connected:
                    await emit(Disconnected(utcnow(), reason=reason))
            finally:
                await _close_quietly(client)
            await asyncio.sleep(next_delay())

    async def _resolve(self, client: Client) -> list[tuple[OpcuaTag, Node]]:
        namespaces = await client.get_namespace_array()
        return [
            (tag, client.get_node(resolve_node_id(tag.node, namespaces, self.controller_id, tag.name)))
            for tag in self.config.tags
        ]

    async def _poll(self, client: Client, nodes: list[tuple[OpcuaTag, Node]], emit: Emit) -> None:
        interval = self.config.poll_interval_s
        while True:
            started = time.monotonic()
            values = await self.read(client, nodes)
            metrics.READ_SECONDS.labels(self.controller_id).observe(time.monotonic() - started)
            complete = len(values) == len(nodes)
            if complete:
                metrics.CONTROLLER_UP.labels(self.controller_id).set(1)
                metrics.LAST_GOOD_READ.labels(self.controller_id).set(time.time())
            await emit(Readings(utcnow(), values, complete=complete))
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def read(self, client: Client, nodes: list[tuple[OpcuaTag, Node]]) -> dict[str, Reading]:
        """One chunked read of every node; a bad status leaves that tag out of the scan."""
        out: dict[str, Reading] = {}
        size = self.config.max_nodes_per_read
        for i in range(0, len(nodes), size):
            chunk = nodes[i : i + size]
            results = await client.read_attributes([n for _, n in chunk])
            for (tag, _), dv in zip(chunk, results, strict=True):
                if dv.StatusCode is not None and not dv.StatusCode.is_good():
                    metrics.READS.labels(self.controller_id, "bad_status").inc()
                    continue
                value = dv.Value.Value if dv.Value is not None else None
                out[tag.name] = Reading(plain_value(value), dv.SourceTimestamp)
        metrics.READS.labels(self.controller_id, "ok").inc()
        return out


async def _close_quietly(client: Client) -> None:
    try:
        await asyncio.wait_for(client.disconnect(), timeout=2.0)
    except Exception:  # noqa: BLE001 - the session is already gone; nothing to tell anyone
        log.debug("disconnect from %s failed", client.server_url.geturl(), exc_info=True)
