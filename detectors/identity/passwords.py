"""Password hashes (argon2id, argon2-cffi) and the policy for new passwords.

Example::

    >>> passwords = Passwords(Argon2Settings())
    >>> stored = passwords.hash("correct horse battery staple")
    >>> passwords.verify(stored, "correct horse battery staple")
    True
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from detectors.identity._exceptions import WeakPassword
from detectors.identity.config import Argon2Settings


class Passwords:
    """Hashes and checks passwords at the configured cost."""

    def __init__(self, settings: Argon2Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.time_cost, memory_cost=settings.memory_cost,
            parallelism=settings.parallelism, type=Type.ID,
        )
        # Checked against when the name is unknown, so that a wrong name costs as much time
        # as a wrong password (the answer does not tell which names exist).
        self._decoy = self._hasher.hash("no user has this password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``; ``None`` (no local password) never does,
        but costs the same time."""
        try:
            return self._hasher.verify(stored or self._decoy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def check_new_password(password: str, *, user_id: str, min_length: int) -> None:
    """Raise `WeakPassword` naming what a new password lacks."""
    if len(password) < min_length:
        raise WeakPassword(f"a password needs at least {min_length} characters "
                           f"(this one has {len(password)})")
    if user_id.lower() in password.lower():
        raise WeakPassword("a password must not contain the user name")
    if len(set(password)) < 5:
        raise WeakPassword("a password needs at least 5 different characters")
