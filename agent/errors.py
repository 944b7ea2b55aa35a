"""The agent's exception tree (under `agent.runtime.errors.OtwatchError`, the one root).

    OtwatchAgentError
    ├── ConfigError          bad config or approvals file; never retried (fix the file)
    ├── StartupError         the agent cannot start (state directory, metrics port); names the
    │                        setting and the fix, after bounded retries where they can help
    └── SourceError          a controller could not be read; `retryable` says whether to retry
        ├── ControllerUnreachable   connection refused, timeout, session lost (retryable)
        └── TagConfigError          the controller refuses a tag's address (not retryable)

Library exceptions (pymodbus, asyncua, OSError) are translated at the source boundary. The
delivery errors (Kafka settings, TLS, spool) are `agent.kafka.errors.DeliveryError`'s tree.
"""

from __future__ import annotations

from agent.runtime.errors import OtwatchError


class OtwatchAgentError(OtwatchError):
    """Base of the agent's config and controller errors."""


class ConfigError(OtwatchAgentError):
    """A config file is invalid: the message names the file, the key and the fix."""


class StartupError(OtwatchAgentError):
    """The agent cannot start: the message names the setting and the fix."""


class SourceError(OtwatchAgentError):
    def __init__(self, message: str, *, controller: str, tag: str | None = None) -> None:
        super().__init__(message, controller=controller, tag=tag)
        self.controller = controller
        self.tag = tag


class ControllerUnreachable(SourceError):
    retryable = True


class TagConfigError(SourceError):
    """The controller answered 'illegal address' (or equal) for a configured tag."""
