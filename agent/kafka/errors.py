"""The delivery exception tree: what talking to Kafka (and the agent's spool) can raise.

    OtwatchError               (agent.runtime.errors) the one root
    └── DeliveryError          base of everything the delivery path raises
        ├── KafkaSettingsError a setting cannot be used (missing file, unset env var, ...)
        │   └── BrokerTlsError the TLS handshake with the broker failed; names the setting to fix
        └── SpoolError         (agent.spool) the spool database failed
            └── SpoolFull      the spool refuses new events (a bound or the disk is full)

What means "the broker or the network is not there right now" is `agent.kafka.startup.TRANSIENT`.
"""

from __future__ import annotations

from agent.runtime.errors import OtwatchError


class DeliveryError(OtwatchError):
    """Base of the delivery exceptions. ``retryable`` says whether trying again can help."""


class KafkaSettingsError(DeliveryError):
    """A Kafka setting cannot be used as given; the message names the key and the fix."""


class BrokerTlsError(KafkaSettingsError):
    """The TLS handshake with the broker failed; the message names the setting to fix."""

