"""A simulated OPC UA PLC: one asyncua server on loopback with its own namespace and folders.

Variables have string node ids (``ns=<idx>;s=Oven.Zone1.TemperatureSP``) under a folder per unit,
never thousands under one parent (asyncua is quadratic there). Scenario writes go through the
server's internal session (not counted) and raise an ``AuditWriteUpdateEventType`` event carrying
the old value, the new value and ``ClientUserId`` = the acting user, as auditing servers do. Write
requests from any client session are counted in ``foreign_writes``.

A restart (as a program download does) can renumber the namespaces: the plant's namespace moves
to a higher index, so clients must resolve nodes by namespace URI.

A stop works around two races in asyncua's own ``Server.stop``. It first stops accepting
connections: asyncua closes the connections it has, then the listening socket, and a client
accepted in between survives the stop (and on Python 3.11 ``Server.stop`` then waits for it for
ever). It then sends what the subscriptions hold (a change made within the last publishing
interval, and its audit event), as the next publishing interval would have, and ends them:
asyncua drops the connections with those notifications still queued, so a scenario that
changes a tag and restarts the PLC at once would lose the change for every subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from asyncua import ua
from asyncua.common.callback import CallbackType, ServerItemCallback
from asyncua.common.node import Node
from asyncua.server.internal_subscription import InternalSubscription
from asyncua.server.server import Server
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds

from simulators.broker import free_port
from simulators.errors import SimulatorError, ValueOutOfRange
from simulators.plant import OpcUaController, OpcUaTag, OpcUaType, Scalar

BIND_ATTEMPTS = 5
#: How long a stopping PLC waits for a subscriber's next publish request to take what it holds.
PUBLISH_ON_STOP_S = 0.5
_PUBLISH_POLL_S = 0.01
_VARIANT = {
    OpcUaType.DOUBLE: ua.VariantType.Double,
    OpcUaType.FLOAT: ua.VariantType.Float,
    OpcUaType.INT32: ua.VariantType.Int32,
    OpcUaType.UINT32: ua.VariantType.UInt32,
    OpcUaType.STRING: ua.VariantType.String,
    OpcUaType.BOOLEAN: ua.VariantType.Boolean,
}

#: UNECE codes (CEFACT) for the units the sample plant uses; others get UnitId -1.
_UNECE = {"degC": "CEL", "bar": "BAR", "s": "SEC", "rpm": "RPM", "%": "P1", "kg": "KGM"}
_CEFACT = "http://www.opcfoundation.org/UA/units/un/cefact"

# The simulated PLC runs without security on purpose; asyncua warns about that on every start.
logging.getLogger("asyncua.server").setLevel(logging.ERROR)


def coerce(tag: OpcUaTag, value: Scalar) -> Scalar:
    """The value in the tag's OPC UA type, or ``ValueOutOfRange`` naming the tag."""
    kind = tag.type
    if kind is OpcUaType.STRING:
        return str(value)
    if kind is OpcUaType.BOOLEAN:
        if isinstance(value, bool):
            return value
    elif isinstance(value, str) or isinstance(value, bool):
        pass
    elif kind in (OpcUaType.DOUBLE, OpcUaType.FLOAT):
        return float(value)
    elif float(value).is_integer():
        return int(value)
    raise ValueOutOfRange(f"tag {tag.name!r} ({kind.value}) cannot hold {value!r}")


def _node_id(name: str, namespace_index: int) -> ua.NodeId:
    return ua.NodeId(ua.String(name), ua.Int16(namespace_index))


def _current(server: Server, node: Node) -> Scalar:
    """The value straight from the address space (no session round trip: fast at 3,000 tags)."""
    variant = server.read_attribute_value(node.nodeid).Value
    if variant is None:
        raise SimulatorError(f"node {node.nodeid.to_string()} has no value")
    value: Scalar = variant.Value
    return value


def _holds_notifications(sub: InternalSubscription) -> bool:
    # asyncua keeps what the next publish response carries in these two queues.
    return bool(sub._triggered_datachanges or sub._triggered_events)


async def _publish_and_end_subscriptions(server: Server) -> None:
    """Send every subscription's queued notifications, then delete the subscriptions.

    A subscription without a publish request waiting gets one from its client within a round
    trip (asyncua then publishes at once); a client that is gone never sends one, hence the
    bound. Deleting ends each subscription's publishing loop, which would otherwise outlive
    the server.
    """
    service = server.iserver.subscription_service
    subs = list(service.subscriptions.values())
    for sub in subs:
        if _holds_notifications(sub):
            await sub.publish_results()
    for _ in range(round(PUBLISH_ON_STOP_S / _PUBLISH_POLL_S)):
        if not any(_holds_notifications(s) for s in subs):
            break
        await asyncio.sleep(_PUBLISH_POLL_S)
    await service.delete_subscriptions(list(service.subscriptions))


def _stop_accepting(server: Server) -> None:
    """Close the listening socket; the open connections stay until ``Server.stop``."""
    listener = getattr(server.bserver, "_server", None)
    if listener is not None:
        listener.close()


async def _cancel_clock(server: Server) -> None:
    """Cancel asyncua's 1 s server-clock loop, which ``Server.stop`` would otherwise wait out."""
    task = getattr(server.iserver, "time_task", None)
    if isinstance(task, asyncio.Task):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.iserver.time_task = None


def eu_information(unit: str) -> ua.EUInformation:
    """The EngineeringUnits property value for a unit symbol."""
    code = _UNECE.get(unit)
    unit_id = int.from_bytes(code.encode("ascii"), "big") if code else -1
    return ua.EUInformation(
        NamespaceUri=_CEFACT,
        UnitId=unit_id,
        DisplayName=ua.LocalizedText(unit),
        Description=ua.LocalizedText(unit),
    )


class OpcUaPLC:
    """One simulated OPC UA controller. Start with ``await plc.start()``."""

    def __init__(self, config: OpcUaController, port: int = 0) -> None:
        """``port`` 0 picks a free port when the PLC first starts; restarts keep it."""
        self.config = config
        self.port = port
        self.foreign_writes = 0
        self.restarts = 0
        self._server: Server | None = None
        self._nodes: dict[str, Node] = {}
        self._values: dict[str, Scalar] = {t.name: coerce(t, t.initial) for t in config.tags}
        self._namespace_index = 0
        self._audit_generator: Any = None

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}{self.config.endpoint_path()}"

    @property
    def namespace_uri(self) -> str:
        return self.config.namespace_uri

    @property
    def namespace_index(self) -> int:
        """The index of the plant namespace right now (it moves up by one per restart)."""
        return self._namespace_index

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Build the address space with the current values and listen on 127.0.0.1:port."""
        if self._server is not None:
            return
        server = Server()
        await server.init()
        server.set_server_name(f"otwatch simulated PLC {self.config.id}")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        for n in range(self.restarts):
            await server.register_namespace(f"{self.config.namespace_uri}:download-{n + 1}")
        self._namespace_index = await server.register_namespace(self.config.namespace_uri)
        await self._build(server)
        server.subscribe_server_callback(CallbackType.PreWrite, self._on_write)
        await self._listen(server)
        self._server = server

    async def _listen(self, server: Server) -> None:
        """Bind 127.0.0.1:port; port 0 picks a free port at bind time, again if it was taken."""
        for _ in range(BIND_ATTEMPTS):
            port = self.port or free_port()
            server.set_endpoint(f"opc.tcp://127.0.0.1:{port}{self.config.endpoint_path()}")
            try:
                await server.start()
            except OSError:
                with contextlib.suppress(Exception):
                    await _cancel_clock(server)
                    await server.stop()
                if self.port:
                    break
                continue
            self.port = port
            return
        raise SimulatorError(
            f"controller {self.config.id!r}: cannot listen on 127.0.0.1:{self.port or 'free port'}"
            " (fix: choose another port in the plant file, or 0 for a free one)"
        )

    async def _build(self, server: Server) -> None:
        folders: dict[str, Node] = {}
        self._nodes = {}
        for tag in self.config.tags:
            parent = server.nodes.objects
            for depth in range(1, len(tag.folders) + 1):
                path = ".".join(tag.folders[:depth])
                if path not in folders:
                    folders[path] = await parent.add_folder(
                        _node_id(path, self._namespace_index),
                        ua.QualifiedName(tag.folders[depth - 1], self._namespace_index),
                    )
                parent = folders[path]
            self._nodes[tag.name] = await self._add_variable(parent, tag)

    async def _add_variable(self, parent: Node, tag: OpcUaTag) -> Node:
        idx = self._namespace_index
        var = await parent.add_variable(
            _node_id(tag.node, idx),
            ua.QualifiedName(tag.browse_name, idx),
            ua.Variant(self._values[tag.name], _VARIANT[tag.type]),
        )
        await var.set_writable()
        if tag.unit:
            await var.add_property(
                _node_id(f"{tag.node}.EngineeringUnits", idx),
                ua.QualifiedName("EngineeringUnits", 0),
                eu_information(tag.unit),
                datatype=ua.NodeId(ua.Int32(ObjectIds.EUInformation)),
            )
        if tag.eu_range:
            await var.add_property(
                _node_id(f"{tag.node}.EURange", idx),
                ua.QualifiedName("EURange", 0),
                ua.Range(Low=tag.eu_range[0], High=tag.eu_range[1]),
                datatype=ua.NodeId(ua.Int32(ObjectIds.Range)),
            )
        return var

    def _on_write(self, event: ServerItemCallback, dispatcher: Any) -> None:
        """Count write requests from client sessions; the server's own writes are internal."""
        if event.is_external:
            self.foreign_writes += len(event.request_params.NodesToWrite)

    async def reset(self) -> None:
        """Back to the plant file: initial values, write counter at zero (no audit events)."""
        self.foreign_writes = 0
        for tag in self.config.tags:
            await self.write(tag.name, tag.initial, audit=False)

    async def stop(self) -> None:
        """Send what subscribers are owed, stop listening, drop every session; values are kept
        for a restart."""
        server, self._server = self._server, None
        self._audit_generator = None
        if server is None:
            return
        for name, node in self._nodes.items():
            self._values[name] = _current(server, node)
        _stop_accepting(server)
        await _publish_and_end_subscriptions(server)
        await _cancel_clock(server)
        await server.stop()

    async def restart(self, downtime_s: float = 0.0, renumber: bool = True) -> None:
        """Stop, stay down, start again; with ``renumber`` the namespace index moves up by one."""
        await self.stop()
        if renumber:
            self.restarts += 1
        await asyncio.sleep(downtime_s)
        await self.start()

    def set_stored(self, name: str, value: Scalar) -> None:
        """Change a tag while the PLC is stopped; it serves the new value when started again."""
        if self._server is not None:
            raise SimulatorError(f"controller {self.config.id!r}: set_stored needs a stopped PLC")
        tag = self.config.tag(name)
        self._values[tag.name] = coerce(tag, value)

    def drop_connections(self) -> int:
        """Close every client connection (the listener stays up); returns how many were closed."""
        server = self._require()
        transports = list(server.iserver.asyncio_transports)
        for transport in transports:
            transport.close()
        return len(transports)

    def _require(self) -> Server:
        if self._server is None:
            raise SimulatorError(f"controller {self.config.id!r} is not running")
        return self._server

    def node_id(self, name: str) -> str:
        """The node id string a client uses right now, e.g. ``ns=2;s=Oven.Mode``."""
        return f"ns={self._namespace_index};s={self.config.tag(name).node}"

    async def read(self, name: str) -> Scalar:
        """The current value of a tag (not counted)."""
        tag = self.config.tag(name)
        server = self._require()
        return _current(server, self._nodes[tag.name])

    async def write(
        self, name: str, value: Scalar, actor: str = "scenario", *, audit: bool = True
    ) -> None:
        """Set a tag from the plant side; with ``audit``, raise an audit write event for actor."""
        tag = self.config.tag(name)
        server = self._require()
        new = coerce(tag, value)
        node = self._nodes[tag.name]
        old = _current(server, node)
        await node.write_value(ua.Variant(new, _VARIANT[tag.type]))
        if audit:
            await self._audit(server, node, tag, old, new, actor)

    async def _audit(
        self, server: Server, node: Node, tag: OpcUaTag, old: Scalar, new: Scalar, actor: str
    ) -> None:
        if self._audit_generator is None:
            self._audit_generator = await server.get_event_generator(
                ObjectIds.AuditWriteUpdateEventType, emitting_node=ObjectIds.Server
            )
            # asyncua maps subtypes of builtin types (UtcTime, NumericRange) to NodeIds.
            types = self._audit_generator.event.data_types
            types["ActionTimeStamp"] = ua.VariantType.DateTime
            types["IndexRange"] = ua.VariantType.String
        gen = self._audit_generator
        ev = gen.event
        # OldValue/NewValue are BaseDataType in the type node: give them the tag's variant type.
        ev.data_types["OldValue"] = ev.data_types["NewValue"] = _VARIANT[tag.type]
        ev.SourceNode = node.nodeid
        ev.SourceName = tag.node
        ev.Severity = 500
        ev.ActionTimeStamp = datetime.now(UTC)
        ev.Status = True
        ev.ServerId = self.config.namespace_uri
        ev.ClientAuditEntryId = f"otwatch-sim:{tag.name}"
        ev.ClientUserId = actor
        ev.AttributeId = AttributeIds.Value.value
        ev.OldValue = old
        ev.NewValue = new
        await gen.trigger(message=f"{actor} wrote {tag.node}: {old!r} -> {new!r}")


async def close_quietly(plc: OpcUaPLC) -> None:
    """Stop a PLC during cleanup without letting a second failure hide the first."""
    with contextlib.suppress(Exception):
        await plc.stop()
