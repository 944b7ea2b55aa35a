"""The contract between the edge agent and everything that reads what it publishes.

What the agent sends to Kafka, as models: the `SuspectChange` event (schema
``otwatch.change/1``, `agent.contract.events`) and the `Heartbeat` (schema
``otwatch.heartbeat/1``, `agent.contract.heartbeat`). Plain pydantic: no Kafka client and no
Prometheus metric is imported here, so reading the contract registers nothing in the reader.

What the classifier (``detectors``) may import from the agent, and nothing else:

- ``agent.contract``: these models;
- ``agent.kafka``: Kafka settings, topic names, client start-up, batching, the consume loop;
- ``agent.runtime``: the one exception root, logging, signals, owned tasks, backoff, outage log.

Those three import nothing else of ``agent``. The import contract in ``make lint``
(``lint-imports``, configured in pyproject.toml) fails the build when either rule is broken:
the classifier must not drag the agent's sources, spool or metrics into its process.

Example::

    >>> from agent.contract import SuspectChange
    >>> SuspectChange.model_validate_json(raw).kafka_key()
    b'plant-1/press-01'
"""

from agent.contract.events import (
    SCHEMA,
    ApprovalConsidered,
    ChangeKind,
    ControllerRef,
    MonitoringGap,
    Protocol,
    SuspectChange,
    TagKind,
    TagRef,
    TagValue,
    Verdict,
)
from agent.contract.heartbeat import HEARTBEAT_SCHEMA, Heartbeat

__all__ = [
    "HEARTBEAT_SCHEMA",
    "SCHEMA",
    "ApprovalConsidered",
    "ChangeKind",
    "ControllerRef",
    "Heartbeat",
    "MonitoringGap",
    "Protocol",
    "SuspectChange",
    "TagKind",
    "TagRef",
    "TagValue",
    "Verdict",
]
