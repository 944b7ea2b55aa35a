"""One exception root: every package's tree derives from `OtwatchError`, names unchanged."""

from __future__ import annotations

import pytest

from agent.approvals.errors import ApprovalsError, ApprovalsFileError, SigningError
from agent.errors import ConfigError, ControllerUnreachable, OtwatchAgentError, SourceError
from agent.kafka.errors import BrokerTlsError, DeliveryError, KafkaSettingsError
from agent.runtime.errors import OtwatchError
from agent.spool import SpoolError, SpoolFull
from detectors.errors import BadMessage, CriteriaError, OtwatchDetectorError
from detectors.records import RecordsError, StoreUnavailable
from simulators.errors import SimulatorError, UnknownTagError


@pytest.mark.parametrize(
    "root",
    [OtwatchAgentError, DeliveryError, ApprovalsError, OtwatchDetectorError, RecordsError,
     SimulatorError],
)
def test_every_package_root_derives_from_the_one_root(root: type[Exception]) -> None:
    assert issubclass(root, OtwatchError)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (ConfigError, False), (ControllerUnreachable, True), (KafkaSettingsError, False),
        (BrokerTlsError, False), (SpoolError, False), (SpoolFull, True), (SigningError, False),
        (CriteriaError, False), (BadMessage, False), (StoreUnavailable, True),
    ],
)
def test_retryable_is_a_class_attribute(error: type[OtwatchError], retryable: bool) -> None:
    assert error.retryable is retryable


def test_context_fields_travel_with_the_error() -> None:
    exc = ControllerUnreachable("connection refused", controller="press-01", tag="speed_sp")
    assert (exc.controller, exc.tag) == ("press-01", "speed_sp")
    assert exc.context == {"controller": "press-01", "tag": "speed_sp"}
    assert str(exc) == "connection refused"
    assert isinstance(exc, SourceError) and OtwatchError("x").context == {}


def test_the_builtin_bases_still_hold() -> None:
    """Callers that catch ValueError or KeyError keep catching these."""
    assert issubclass(ApprovalsFileError, ValueError)
    assert issubclass(UnknownTagError, KeyError)
    assert str(UnknownTagError("no tag 'x'")) == "no tag 'x'"
