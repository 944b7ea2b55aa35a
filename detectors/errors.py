"""The classifier's exception tree.

    OtwatchDetectorError
    ├── CriteriaError        bad criteria file (names the file, the key and the fix)
    ├── ClassifierConfigError bad classifier config
    └── BadMessage           a Kafka message that is not a valid event: goes to the DLQ
"""

from __future__ import annotations


class OtwatchDetectorError(Exception):
    retryable = False


class CriteriaError(OtwatchDetectorError):
    pass


class ClassifierConfigError(OtwatchDetectorError):
    pass


class BadMessage(OtwatchDetectorError):
    """Why a message could not be taken; the reason travels to the dead-letter topic."""
