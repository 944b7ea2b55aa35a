"""Who may do what: one enumerated table, checked in one place.

Each workflow command names the one `Permission` it needs, and so does each route of the
records service (`detectors.web.routes`); `GRANTS` says which roles hold it. Nothing acts with
roles it was not given: there is no "local tool" that holds every role, and the roles checked
are the ones the users table holds when the command runs (`detectors.records.workflow`).

- viewer: read records, their trail, KPIs and the trail verification;
- operator: read; report a suspected nonconformity by hand, contribute their function's
  impact assessment, and comment;
- quality: read, report, comment; work the record (lifecycle, sections, lot holds, CAPA,
  containment decisions);
- security: the same, with the security ticket's status instead of lot holds;
- approver: read, comment; sign plan approval and closure (as quality or security, a role
  the signer must also hold);
- admin: manage users, roles and API tokens (reads no records);
- integration: a ticket connector's service user: read, and record linked tickets' state.

Example::

    >>> allows({"quality"}, Permission.HOLD_LOTS)
    True
    >>> require("op.smith", {"operator"}, Permission.TRANSITION)
    Traceback (most recent call last):
    PermissionDenied: 'op.smith' may not move a record along its lifecycle: that needs ...
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from detectors.records._exceptions import PermissionDenied
from detectors.records.models import Role


class Permission(StrEnum):
    """What a command or a request does; the value reads in an error ("may not …")."""

    VIEW_RECORDS = "read records, their audit trail and KPIs"
    COMMENT = "comment on a record"
    REPORT = "report a suspected nonconformity by hand"
    CONTRIBUTE_IMPACT = "contribute to the impact assessment"
    TRANSITION = "move a record along its lifecycle"
    EDIT_SECTIONS = "edit a record's sections"
    HOLD_LOTS = "hold or release lots"
    DECIDE_CONTAINMENT = "record containment decisions"
    MANAGE_CAPA = "add or change CAPA actions"
    SET_TICKET_STATUS = "change the security ticket's status"
    SIGN = "sign plan approvals and closures"
    MANAGE_USERS = "manage users, roles and API tokens"
    SYNC_TICKETS = "record the state of linked tickets in external tools"


_P = Permission
_READ_AND_REPORT = frozenset({_P.VIEW_RECORDS, _P.COMMENT, _P.CONTRIBUTE_IMPACT, _P.REPORT})
_WORK = frozenset({_P.TRANSITION, _P.EDIT_SECTIONS, _P.DECIDE_CONTAINMENT, _P.MANAGE_CAPA})

#: The permission table: role → what it may do.
GRANTS: dict[str, frozenset[Permission]] = {
    Role.VIEWER.value: frozenset({_P.VIEW_RECORDS}),
    Role.OPERATOR.value: _READ_AND_REPORT,
    Role.QUALITY.value: _READ_AND_REPORT | _WORK | {_P.HOLD_LOTS},
    Role.SECURITY.value: _READ_AND_REPORT | _WORK | {_P.SET_TICKET_STATUS},
    Role.APPROVER.value: frozenset({_P.VIEW_RECORDS, _P.COMMENT, _P.SIGN}),
    Role.ADMIN.value: frozenset({_P.MANAGE_USERS}),
    # A ticket connector's service user: the outbox links tickets, the inbound webhook
    # reports their state; it reads records and can change nothing else.
    Role.INTEGRATION.value: frozenset({_P.VIEW_RECORDS, _P.SYNC_TICKETS}),
}


def allows(roles: Iterable[str], permission: Permission) -> bool:
    """Whether any of ``roles`` grants ``permission``."""
    return any(permission in GRANTS.get(role, frozenset()) for role in roles)


def granted_by(permission: Permission) -> list[str]:
    """The roles that grant ``permission``, in table order (for messages)."""
    return [role for role, granted in GRANTS.items() if permission in granted]


def require(actor: str, roles: Iterable[str], permission: Permission) -> None:
    """Raise `PermissionDenied` unless one of ``roles`` grants ``permission``."""
    if not allows(roles, permission):
        raise PermissionDenied(actor, permission.value, granted_by(permission))
