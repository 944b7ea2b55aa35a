"""One example alert in every format (``otwatch-siem sample``): for the people who write the
SIEM's parsing rules, and for the README, whose samples a test compares with these."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from agent.contract import SuspectChange
from detectors.alert_formats import ENCODERS, read_alert
from detectors.alert_formats.syslog import SyslogHeader
from detectors.classification import Classification
from detectors.records import RecordOutcome

FORMATS = ("otwatch", "ocsf", "cef", "syslog")
AT = datetime(2026, 11, 23, 2, 14, 5, 120000, tzinfo=UTC)

EVENT = SuspectChange.model_validate({
    "schema": "otwatch.change/2",
    "event_id": "5b0f8a52-6d1e-4c43-9a4f-2f8e0c1d7a10",
    "seq": 4812,
    "agent_id": "edge-01",
    "site": "plant-1",
    "line": "line-2",
    "controller": {"id": "oven-01", "protocol": "opcua",
                   "endpoint": "opc.tcp://10.20.0.11:4840", "validated": True},
    "tag": {"name": "zone1_temperature_sp", "address": "ns=2;s=Oven.Zone1.TempSP",
            "kind": "setpoint", "critical_to_quality": True, "unit": "degC"},
    "old_value": 180.0,
    "new_value": 215.0,
    "occurred_at": AT,
    "detected_at": AT,
    "change_kind": "setpoint_change",
    "verdict": "unapproved",
    "verdict_reason": "no approved change record for oven-01/zone1_temperature_sp",
    "actor": None,
})
CLASSIFICATION = Classification(
    kind="joint", severity="high", rules_fired=("JQS-1",), criteria_version="2026.11-3",
    description="setpoint change on oven-01/zone1_temperature_sp: 180.0 -> 215.0 degC "
    "(unapproved, off hours). Product or process nonconformance suspected to be caused by "
    "tampering.",
    correlation_key="plant-1/oven-01", attack_techniques=("T0836",),
)
OUTCOME = RecordOutcome(event_id=EVENT.event_id, record_id="NC-2026-0042",
                        ticket_id="SEC-2026-0042", created=True, duplicate=False)
#: The syslog header of the sample (a real relay uses its host name and process id).
HEADER = SyslogHeader(hostname="siem-relay-1", facility="auth", procid="4711")


def sample(fmt: str) -> str:
    """The example alert in ``fmt`` (one of `FORMATS`), as text; JSON indented."""
    if fmt == "syslog":
        from detectors.siem.relay import syslog_frame

        alert = read_alert(ENCODERS["otwatch"](EVENT, CLASSIFICATION, OUTCOME))
        return syslog_frame(alert, HEADER, 8192).decode()
    body = ENCODERS[fmt](EVENT, CLASSIFICATION, OUTCOME)
    if fmt == "cef":
        return body.decode()
    return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
