"""Browse paths in the OPC UA tag config: parsed at load time, errors name the key and the fix."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agent.config import OpcuaControllerConfig
from agent.sources.opcua import describe_plan
from agent.sources.opcua.config import PathElement


def tag(**fields: Any) -> dict[str, Any]:
    return {"name": "hold_pressure", "kind": "setpoint", **fields}


def controller(*tags: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "press-line", "protocol": "opcua", "endpoint": "opc.tcp://127.0.0.1:4840",
            "tags": list(tags), **extra}


def test_a_browse_path_with_namespace_uris_loads() -> None:
    config = OpcuaControllerConfig.model_validate(controller(
        tag(browse_path="/Objects/PressLine/di:Devices/Setpoints/HoldPressure",
            namespace_uri="urn:vendor:press"),
        {"name": "state", "kind": "mode", "browse_path": "/Objects/0:Server/0:ServerStatus"},
        namespaces={"di": "http://opcfoundation.org/UA/DI/"},
    ))
    hold, state = config.tags
    assert config.browse_path_of(hold) == [
        PathElement("urn:vendor:press", "PressLine"),
        PathElement("http://opcfoundation.org/UA/DI/", "Devices"),
        PathElement("urn:vendor:press", "Setpoints"),
        PathElement("urn:vendor:press", "HoldPressure"),
    ]
    assert config.browse_path_of(state) == [PathElement(None, "Server"),
                                            PathElement(None, "ServerStatus")]
    assert hold.event_address == "/Objects/PressLine/di:Devices/Setpoints/HoldPressure"
    assert describe_plan(config)[1] == "2 node(s) by browse path, resolved on every connect"


@pytest.mark.parametrize(("fields", "says"), [
    ({}, "exactly one of node (nsu=<uri>;s=<id>) or browse_path"),
    ({"node": "ns=2;s=X", "browse_path": "/Objects/A"}, "exactly one of node"),
    ({"browse_path": "Objects/A", "namespace_uri": "urn:x"}, "must start at the Objects folder"),
    ({"browse_path": "/Root/A", "namespace_uri": "urn:x"}, "fix: write it as /Objects/"),
    ({"browse_path": "/Objects", "namespace_uri": "urn:x"}, "must start at the Objects folder"),
    ({"browse_path": "/Objects/A//B", "namespace_uri": "urn:x"}, "has an empty element"),
    ({"browse_path": "/Objects/A"}, "element 'A' has no namespace; fix: add namespace_uri"),
    ({"browse_path": "/Objects/plc:A"}, "'plc' is not an alias of the controller's namespaces"),
    ({"node": "nsu=urn:x;s=T", "namespace_uri": "urn:x"}, "namespace_uri is for browse_path"),
])
def test_a_bad_browse_path_names_the_key_and_the_fix(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError) as info:
        OpcuaControllerConfig.model_validate(controller(tag(**fields)))
    assert says in str(info.value) and "tags" in str(info.value)
