"""The records store's exception tree.

    RecordsError                  base of everything raised by `detectors.records`
    ├── StoreUnavailable          the database cannot be opened or reached (retryable)
    │   └── NotMigrated           the database has no records schema, or an older one (retryable)
    ├── RecordNotFound            no master record with that id
    ├── InvalidUpdate             a command names an unknown field or carries a bad value
    ├── TransitionRefused         the lifecycle forbids the requested state change
    ├── GuardRefused              a step of the joint procedure comes before what it needs
    ├── ReasonRequired            a change after creation came without a reason (or actor)
    ├── PermissionDenied          the actor's roles do not grant what the command needs
    ├── UnknownActor              the actor is not an enabled user of the users table
    ├── SignatureRefused          a signature offered where none is needed, or one that
    │                             does not hold (wrong role, same person twice, stale re-auth)
    └── ConcurrentUpdate          the record changed since the caller read it (stale version)

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


class NotMigrated(StoreUnavailable):
    """The database has no records tables yet, or an older schema: run the migrations."""


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


class GuardRefused(RecordsError):
    """A guard of the joint procedure (`lifecycle.GUARDS`) refuses a step that is not a
    state change (a containment decision); the message names every missing item."""

    def __init__(self, record_id: str, current: str, step: str, missing: list[str]) -> None:
        self.record_id = record_id
        self.current = current
        self.requested = step
        self.missing = missing
        super().__init__(f"record {record_id}: {step} needs first: " + "; ".join(missing))


class PermissionDenied(RecordsError):
    """The actor holds no role that grants the permission the command needs."""

    def __init__(self, actor: str, permission: str, granted_by: list[str]) -> None:
        self.actor = actor
        self.permission = permission
        self.granted_by = granted_by
        super().__init__(
            f"{actor!r} may not {permission}: that needs the "
            + " or the ".join(granted_by) + " role"
        )


class UnknownActor(RecordsError):
    """Every change is made by an enabled user of the users table; this actor is not one."""

    def __init__(self, actor: str, why: str) -> None:
        self.actor = actor
        super().__init__(f"{actor!r} may not change records: {why}")


class SignatureRefused(RecordsError):
    """An electronic signature that cannot be taken: none is needed at this step, the signer
    does not hold the role signed as, one person signs twice, or the password was not
    re-entered. Never dropped silently: the whole command is refused."""


class ConcurrentUpdate(RecordsError):
    """Optimistic concurrency: the command was built on a version of the record that is no
    longer the current one. Read the record again and redo the change."""

    def __init__(self, record_id: str, expected: int, current: int) -> None:
        self.record_id = record_id
        self.expected = expected
        self.current = current
        super().__init__(
            f"record {record_id} changed since it was read: expected version {expected}, "
            f"it is at version {current}; reload it and apply the change again"
        )
