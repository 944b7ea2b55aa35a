"""The identity package's exception tree.

    IdentityError                 base of everything raised by `detectors.identity`
    ├── SignInRefused             wrong user or password, locked, disabled, no role: one
    │                             message for all but the lock (names are not confirmed)
    ├── DirectoryUnavailable      the LDAP directory cannot be reached (retryable)
    ├── InvalidUser               a user name, role or printed name that cannot be used
    ├── WeakPassword              a new password that does not meet the policy
    ├── UserExists / NoSuchUser   user management on a name that is taken / unknown
    └── IdentityConfigError       the identity or LDAP settings are wrong (names key and fix)

``retryable`` says whether trying the same call again later may succeed.
"""

from __future__ import annotations

from datetime import datetime

from agent.runtime.errors import OtwatchError


class IdentityError(OtwatchError):
    """Base of every error the identity package raises."""

    retryable = False


class SignInRefused(IdentityError):
    """The credentials were not accepted; ``locked_until`` is set when the name is locked."""

    def __init__(self, message: str, locked_until: datetime | None = None) -> None:
        super().__init__(message)
        self.locked_until = locked_until


class DirectoryUnavailable(IdentityError):
    """The site's directory (LDAP) did not answer; sign in again later."""

    retryable = True


class InvalidUser(IdentityError):
    """A user name, role or printed name that cannot be used; the message says why."""


class WeakPassword(IdentityError):
    """A new password that does not meet the policy; the message says what is missing."""


class UserExists(IdentityError):
    """`add` for a user id that is already taken (ids are never reused)."""


class NoSuchUser(IdentityError):
    """A user id that is not in the users table."""


class IdentityConfigError(IdentityError):
    """Wrong identity or LDAP settings; the message names the key and the fix."""
