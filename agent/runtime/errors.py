"""`OtwatchError`: the one root every otwatch exception derives from.

Each package keeps its own tree (documented where it lives) under this root, so a command line
catches ``OtwatchError`` once and a library error never passes for one of ours::

    OtwatchError
    ├── OtwatchAgentError     (agent.errors)              config and controller errors of the agent
    ├── DeliveryError         (agent.kafka.errors)        Kafka settings, TLS, the spool
    ├── ApprovalsError        (agent.approvals.errors)    approvals files, signatures, used state
    ├── OtwatchDetectorError  (detectors.errors)          criteria, classifier config, bad messages
    ├── RecordsError          (detectors.records)         the records store
    └── SimulatorError        (simulators.errors)         the simulated plant and its scenarios

``retryable`` (a class attribute) says whether trying the same thing again later may help;
``context`` holds what the error is about (``controller``, ``tag``, ``file``, ...), for logs and
for callers that act on it.

Example::

    >>> raise SourceError("connection refused", controller="press-01")
    >>> exc.retryable, exc.context
    (False, {'controller': 'press-01'})
"""

from __future__ import annotations

from typing import Any, ClassVar


class OtwatchError(Exception):
    """Base of every error otwatch raises on purpose; the message says what to fix."""

    #: Whether the same call may succeed later without anyone fixing anything.
    retryable: ClassVar[bool] = False

    def __init__(self, *args: object, **context: Any) -> None:
        super().__init__(*args)
        #: What the error is about, by name (``controller``, ``tag``, ``file``, ...).
        self.context: dict[str, Any] = context
