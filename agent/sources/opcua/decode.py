"""What an OPC UA server sends, as the agent's values (pure).

`plain_value` turns a variant's value into a JSON-friendly `TagValue` (LocalizedText as its
text, byte strings as hex, datetimes in ISO 8601, arrays as ``{"items": [...]}``, anything
else as its text), the same for a read, a data-change notification and an audit event.
`audited_write` takes from an ``AuditWriteUpdateEventType`` event the node written, the
acting user and the value written.
"""

from __future__ import annotations

from datetime import datetime

from asyncua import ua
from asyncua.common.subscription import OpcEvent

from agent.contract import TagValue
from agent.sources.opcua.audit import AuditedWrite


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


def audited_write(event: OpcEvent) -> AuditedWrite | None:
    """The node, user and new value of an audit write event (None if it lacks them)."""
    fields = event.event.get_event_props_as_fields_dict()
    node = _field(fields, "SourceNode")
    user = _field(fields, "ClientUserId")
    if not isinstance(node, ua.NodeId) or not isinstance(user, str) or not user:
        return None
    return AuditedWrite(node.to_string(), user, plain_value(_field(fields, "NewValue")))


def _field(fields: dict[str, ua.Variant], name: str) -> object:
    variant = fields.get(name)
    return None if variant is None else variant.Value
