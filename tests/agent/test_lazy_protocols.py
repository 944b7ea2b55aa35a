"""The agent loads a protocol library only for a controller that speaks it: a Modbus-only agent
never holds asyncua (about 19 MB resident at start). In a fresh interpreter, since the test
session itself has imported everything already."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

_BUILD = """
import sys
from agent.config import load_agent_config
from agent.runner import make_source
config = load_agent_config("config/agent.yaml")
by_protocol = {"modbus": [], "opcua": []}
for ctl in config.controllers:
    by_protocol[ctl.protocol].append(ctl.id)
assert by_protocol["modbus"] and by_protocol["opcua"], by_protocol
sources = [make_source(config, cid) for cid in by_protocol["modbus"]]
print("after modbus", "asyncua" in sys.modules)
sources += [make_source(config, cid) for cid in by_protocol["opcua"]]
print("after opcua", "asyncua" in sys.modules, type(sources[-1]).__name__)
"""


def test_modbus_sources_do_not_load_asyncua_and_opcua_sources_do() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _BUILD], cwd=ROOT, capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "after modbus False", "after opcua True OpcuaSubscriptionSource",
    ]
