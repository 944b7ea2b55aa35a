"""One OPC UA session: connect (securely where configured), resolve nodes, read in chunks.

Shared by the polling and the subscribing source. A PLC program download often restarts the
OPC UA server and can renumber its namespaces, so nodes are configured as
``nsu=<namespace uri>;s=<id>`` and resolved to indexes on every new session. The session's
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
from dataclasses import dataclass
from datetime import datetime

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from agent import metrics
from agent.contract import TagValue
from agent.errors import ControllerUnreachable, TagConfigError
from agent.sources.base import Reading, utcnow
from agent.sources.opcua_config import OpcuaControllerConfig, OpcuaTag
from agent.sources.opcua_security import apply_security, apply_user

log = logging.getLogger(__name__)

_SERVER_START_TIME = ua.NodeId(ua.Int32(ObjectIds.Server_ServerStatus_StartTime))
_MAX_NODES_PER_READ = ua.NodeId(
    ua.Int32(ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead)
)
_MAX_ITEMS_PER_CALL = ua.NodeId(
    ua.Int32(ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall)
)

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
    nodes: list[tuple[OpcuaTag, Node]]
    #: Changes when the server restarted (possible program download).
    identity: str
    max_per_read: int
    max_items_per_call: int


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
    client = Client(config.endpoint, timeout=config.timeout_s)
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
    nodes = [
        (tag, client.get_node(resolve_node_id(tag.node, namespaces, config.id, tag.name)))
        for tag in config.tags
    ]
    started, per_read, per_call = await _server_facts(client)
    return OpcuaSession(
        client=client,
        nodes=nodes,
        identity=f"server-start:{started}",
        max_per_read=min(config.max_nodes_per_read, per_read or config.max_nodes_per_read),
        max_items_per_call=min(config.max_items_per_call, per_call or config.max_items_per_call),
    )


async def _server_facts(client: Client) -> tuple[object, int, int]:
    """Start time, MaxNodesPerRead and MaxMonitoredItemsPerCall (0: not given, no limit)."""
    ids = [_SERVER_START_TIME, _MAX_NODES_PER_READ, _MAX_ITEMS_PER_CALL]
    results = await client.read_attributes([client.get_node(i) for i in ids])
    values = [dv.Value.Value if dv.Value is not None and _good(dv) else None for dv in results]
    return values[0], _limit(values[1]), _limit(values[2])


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
        results = await session.client.read_attributes([n for _, n in chunk])
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
