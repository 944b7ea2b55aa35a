"""The records store's exception tree.

    RecordsError                  base of everything raised by `detectors.records`
    ├── StoreUnavailable          the database cannot be opened or reached (retryable)
    ├── RecordNotFound            no master record with that id
    ├── InvalidUpdate             a field update names an unknown field or a bad value
    ├── TransitionRefused         the lifecycle forbids the requested state change
    └── ReasonRequired            a change after creation came without a reason

``retryable`` says whether trying the same call again later may succeed.
"""

from __future__ import annotations

from agent.runtime.errors import OtwatchError


class RecordsError(OtwatchError):
    """Base of every error the records store raises."""

    retryable = False


class StoreUnavailable(RecordsError):
    """The database cannot be opened or reached; the fix is in the message."""

    retryable = True


class RecordNotFound(RecordsError):
    """No master record has the requested id."""

    def __init__(self, record_id: str) -> None:
        super().__init__(f"no master record {record_id!r}; `otwatch-records list` shows the ids")
        self.record_id = record_id


class InvalidUpdate(RecordsError):
    """A field update names an unknown field or carries a value of the wrong shape."""


class ReasonRequired(RecordsError):
    """Every change after creation must say why (ISO/IEC 27001 10.2, 21 CFR 11 style trail)."""


class TransitionRefused(RecordsError):
    """The lifecycle forbids this state change; the message names what is missing."""

    def __init__(self, record_id: str, current: str, requested: str, missing: list[str]) -> None:
        self.record_id = record_id
        self.current = current
        self.requested = requested
        self.missing = missing
        super().__init__(
            f"record {record_id}: cannot go from {current!r} to {requested!r}: "
            + "; ".join(missing)
        )
