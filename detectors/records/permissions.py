"""Who may do what to a master record: one enumerated table, checked in one place.

Each command names the one `Permission` it needs; `GRANTS` says which roles hold it. Today
there are two roles (quality and security) and both may do everything; the identity issue adds
viewer, operator, approver and admin, each as one more line in `GRANTS`.

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
    """What a command does to a record; the value reads in an error ("may not …")."""

    TRANSITION = "move a record along its lifecycle"
    EDIT_SECTIONS = "edit a record's sections"
    HOLD_LOTS = "hold or release lots"
    DECIDE_CONTAINMENT = "record containment decisions"
    CONTRIBUTE_IMPACT = "contribute to the impact assessment"
    MANAGE_CAPA = "add or change CAPA actions"
    SET_TICKET_STATUS = "change the security ticket's status"


#: The permission table: role → what it may do.
GRANTS: dict[str, frozenset[Permission]] = {
    Role.QUALITY.value: frozenset(Permission),
    Role.SECURITY.value: frozenset(Permission),
}

#: The roles of a local tool run with the database's own credentials (``otwatch-records``
#: without ``--role``): whoever can open the database can already write to it.
LOCAL_TOOL_ROLES = frozenset(GRANTS)


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
