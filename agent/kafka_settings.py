"""Moved to `agent.kafka.settings`. Kept only for detectors/containment.py and
detectors/containment_cli.py (another change rewrites them; the merge repoints them and
deletes this module). Import from `agent.kafka.settings`."""

from agent.kafka.settings import KafkaSettings

__all__ = ["KafkaSettings"]
