"""The classifier's exception tree (under `agent.runtime.errors.OtwatchError`, the one root).

    OtwatchDetectorError
    ├── CriteriaError        bad criteria file (names the file, the key and the fix)
    ├── ClassifierConfigError bad classifier config
    └── BadMessage           a Kafka message that is not a valid event: goes to the DLQ

The records store has its own tree (`detectors.records.RecordsError`), under the same root.
"""

from __future__ import annotations

from agent.runtime.errors import OtwatchError


class OtwatchDetectorError(OtwatchError):
    """Base of the classifier's errors."""


class CriteriaError(OtwatchDetectorError):
    pass


class ClassifierConfigError(OtwatchDetectorError):
    pass


class BadMessage(OtwatchDetectorError):
    """Why a message could not be taken; the reason travels to the dead-letter topic."""
