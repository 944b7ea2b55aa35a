"""The contract between the edge agent and everything that reads what it publishes.

What the agent sends to Kafka, as models: the `SuspectChange` event (schema
``otwatch.change/2``, `agent.contract.events`; ``/1`` still read), how its values are written
(`agent.contract.values`: NaN, infinities, truncated values), its size limits
(`agent.contract.limits`), its signature (`agent.contract.signing`, batches through
`agent.contract.merkle`), and the `Heartbeat`
(schema ``otwatch.heartbeat/2``, `agent.contract.heartbeat`; ``/1`` still read). Plain pydantic,
orjson and cryptography: no Kafka client and no Prometheus metric is imported here, so
reading the contract registers nothing in the reader.

What the classifier (``detectors``) may import from the agent, and nothing else:

- ``agent.contract``: these models;
- ``agent.kafka``: Kafka settings, topic names, client start-up, batching, the consume loop;
- ``agent.runtime``: the one exception root, logging, signals, owned tasks, backoff, outage log.

Those three import nothing else of ``agent``. The import contract in ``make lint``
(``lint-imports``, configured in pyproject.toml) fails the build when either rule is broken:
the classifier must not drag the agent's sources, spool or metrics into its process.

Example::

    >>> from agent.contract import SuspectChange, verify_event
    >>> SuspectChange.model_validate_json(raw).kafka_key()
    b'plant-1/press-01'
    >>> verify_event(raw, trusted_keys_by_id).status
    <SignatureStatus.VALID: 'valid'>
"""

from agent.contract.events import (
    CHANGE_SCHEMAS,
    SCHEMA,
    SCHEMA_V1,
    ApprovalConsidered,
    ChangeKind,
    ControllerRef,
    EventSignature,
    MerkleProof,
    MonitoringGap,
    Protocol,
    Snapshot,
    SuspectChange,
    TagKind,
    TagRef,
    Verdict,
)
from agent.contract.heartbeat import (
    HEARTBEAT_SCHEMA,
    HEARTBEAT_SCHEMA_V1,
    HEARTBEAT_SCHEMAS,
    Heartbeat,
)
from agent.contract.limits import EventLimits, fit_event, limit_value, take_snapshot
from agent.contract.signing import (
    EventCheck,
    EventSigner,
    SignatureStatus,
    VerifiedRoots,
    key_id_of,
    sign_event,
    verify_event,
)
from agent.contract.values import (
    EventValue,
    TagValue,
    TruncatedValue,
    canonical_json,
    decode_value,
    encode_value,
    truncated,
)

__all__ = [
    "CHANGE_SCHEMAS",
    "HEARTBEAT_SCHEMA",
    "HEARTBEAT_SCHEMAS",
    "HEARTBEAT_SCHEMA_V1",
    "SCHEMA",
    "SCHEMA_V1",
    "ApprovalConsidered",
    "ChangeKind",
    "ControllerRef",
    "EventCheck",
    "EventLimits",
    "EventSignature",
    "EventSigner",
    "EventValue",
    "Heartbeat",
    "MerkleProof",
    "MonitoringGap",
    "Protocol",
    "SignatureStatus",
    "Snapshot",
    "SuspectChange",
    "TagKind",
    "TagRef",
    "TagValue",
    "TruncatedValue",
    "Verdict",
    "VerifiedRoots",
    "canonical_json",
    "decode_value",
    "encode_value",
    "fit_event",
    "key_id_of",
    "limit_value",
    "sign_event",
    "take_snapshot",
    "truncated",
    "verify_event",
]
