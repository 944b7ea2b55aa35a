"""One OPC UA session: connect (securely where configured), resolve nodes, read in chunks.

Shared by the polling and the subscribing source. A PLC program download often restarts the
OPC UA server and can renumber its namespaces, so nodes are configured as
``nsu=<namespace uri>;s=<id>`` or by browse path, and resolved on every new session
(`agent.sources.opcua.resolve`); a tag that does not resolve is left out of the session and
named in ``unresolved``. The session's
identity is the server's start time (``ServerStatus.StartTime``): it changes when the server
restarted. Reads are chunked to the smaller of ``max_nodes_per_read`` and the server's own
``OperationLimits.MaxNodesPerRead``; monitored items are created in chunks of the smaller of
``max_items_per_call`` and ``MaxMonitoredItemsPerCall`` (a server that allows 10,000 per call
may still take longer than one request timeout to create them). Nothing here writes to the
server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from agent import metrics
from agent.errors import ControllerUnreachable
from agent.sources.base import Reading, utcnow
from agent.sources.opcua.config import OpcuaControllerConfig, OpcuaTag
from agent.sources.opcua.decode import plain_value
from agent.sources.opcua.plan import chunk_size
from agent.sources.opcua.resolve import resolve_node_id, resolve_tags
from agent.sources.opcua.security import apply_security, apply_user

__all__ = [
    "CONNECTION_ERRORS",
    "OpcuaSession",
    "close_quietly",
    "describe",
    "open_session",
    "read_all",
    "resolve_node_id",
]

log = logging.getLogger(__name__)

_SERVER_START_TIME = ua.NodeId(ua.Int32(ObjectIds.Server_ServerStatus_StartTime))
_MAX_NODES_PER_READ = ua.NodeId(
    ua.Int32(ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead)
)
_MAX_ITEMS_PER_CALL = ua.NodeId(
    ua.Int32(ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall)
)
_MAX_PATHS_PER_CALL = ua.NodeId(ua.Int32(
    ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerTranslateBrowsePathsToNodeIds
))
#: Browse paths translated in one request when the server names no limit of its own.
PATHS_PER_CALL = 1000

#: What a lost or refused connection raises inside asyncua and asyncio.
CONNECTION_ERRORS = (OSError, TimeoutError, UaError, ControllerUnreachable)

#: Status codes that mean "fix the configuration", with the fix.
_REFUSALS = {
    "BadUserAccessDenied": "check auth.username and its password",
    "BadIdentityTokenInvalid": "check auth.username and its password",
    "BadIdentityTokenRejected": "check auth.username and its password, or use anonymous",
    "BadCertificateUntrusted": "trust the client certificate (security.certificate) on the server",
    "BadCertificateInvalid": "check security.certificate and security.private_key",
    "BadSecurityChecksFailed": "trust the client certificate on the server; check the key pair",
    "BadSecurityPolicyRejected": "use a security.policy and mode the server offers",
}


@dataclass
class OpcuaSession:
    client: Client
    #: The node id of each watched tag (ids, not asyncua `Node` objects: kept for the session's
    #: life, tens of thousands of them).
    nodes: list[tuple[OpcuaTag, ua.NodeId]]
    #: Changes when the server restarted (possible program download).
    identity: str
    max_per_read: int
    max_items_per_call: int
    #: Tags whose node does not resolve in this session, with why (left out of ``nodes``).
    unresolved: dict[str, str] = field(default_factory=dict)


def describe(exc: BaseException) -> str:
    """A one-line reason for the outage log; refusals name the config key to fix."""
    if isinstance(exc, UaStatusCodeError):
        name = ua.StatusCode(exc.code).name
        fix = _REFUSALS.get(name)
        if fix is not None:
            return f"the server refused the session ({name}); fix: {fix}"
        return f"{name}: {exc}"
    return str(exc) or type(exc).__name__


async def open_session(config: OpcuaControllerConfig) -> OpcuaSession:
    """Connect, check the server's certificate, log in, and resolve every tag's node.

    Bounded by a few request timeouts; on failure the client is closed and a connection
    error (see `CONNECTION_ERRORS`) is raised.
    """
    # asyncua probes the server's state every watchdog interval with that as its timeout (1 s
    # by default, whatever the request timeout): a server busy creating monitored items, or an
    # agent loop busy with 200 other controllers, missed it and every session was dropped.
    client = Client(config.endpoint, timeout=config.timeout_s,
                    watchdog_intervall=config.timeout_s)
    try:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
        async with asyncio.timeout(4 * config.timeout_s):
            return await _establish(client, config)
    except BaseException:
        await close_quietly(client)
        raise


async def _establish(client: Client, config: OpcuaControllerConfig) -> OpcuaSession:
    await apply_security(client, config.security, config.id, utcnow())
    apply_user(client, config.auth, config.id)
    await client.connect()
    namespaces = await client.get_namespace_array()
    started, per_read, per_call, per_translate = await _server_facts(client)
    nodes, unresolved = await resolve_tags(
        client, config, namespaces, chunk_size(PATHS_PER_CALL, per_translate))
    return OpcuaSession(
        client=client,
        nodes=nodes,
        identity=f"server-start:{started}",
        max_per_read=chunk_size(config.max_nodes_per_read, per_read),
        max_items_per_call=chunk_size(config.max_items_per_call, per_call),
        unresolved=unresolved,
    )


async def _server_facts(client: Client) -> tuple[object, int, int, int]:
    """Start time, MaxNodesPerRead, MaxMonitoredItemsPerCall and
    MaxNodesPerTranslateBrowsePathsToNodeIds (0: not given, no limit)."""
    ids = [_SERVER_START_TIME, _MAX_NODES_PER_READ, _MAX_ITEMS_PER_CALL, _MAX_PATHS_PER_CALL]
    results = await client.read_attributes([client.get_node(i) for i in ids])
    values = [dv.Value.Value if dv.Value is not None and _good(dv) else None for dv in results]
    return values[0], _limit(values[1]), _limit(values[2]), _limit(values[3])


def _limit(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _good(dv: ua.DataValue) -> bool:
    return dv.StatusCode is None or bool(dv.StatusCode.is_good())


async def read_all(session: OpcuaSession, controller: str) -> dict[str, Reading]:
    """One chunked read of every node; a bad status leaves that tag out of the scan."""
    out: dict[str, Reading] = {}
    size = session.max_per_read
    for i in range(0, len(session.nodes), size):
        chunk = session.nodes[i : i + size]
        results = await session.client.uaclient.read_attributes(
            [n for _, n in chunk], AttributeIds.Value)
        for (tag, _), dv in zip(chunk, results, strict=True):
            if not _good(dv):
                metrics.READS.labels(controller, "bad_status").inc()
                continue
            value = dv.Value.Value if dv.Value is not None else None
            out[tag.name] = Reading(plain_value(value), dv.SourceTimestamp)
    metrics.READS.labels(controller, "ok").inc()
    return out


async def close_quietly(client: Client) -> None:
    """Close the session and the socket; the session may already be gone."""
    try:
        async with asyncio.timeout(2.0):
            await client.disconnect()
    except Exception:  # nothing to tell anyone: the session is over either way
        log.debug("disconnect from %s failed", client.server_url.geturl(), exc_info=True)
        with contextlib.suppress(Exception):
            client.disconnect_socket()
