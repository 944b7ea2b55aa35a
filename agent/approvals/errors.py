"""The approvals package's one exception tree.

``ApprovalsError``
  ``ApprovalsFileError``   a bad approvals file (names the file, the key, the fix)
  ``ApprovalsStateError``  the single-use state file is unreadable (names the file and the fix)
  ``SigningError``         a key or signature is malformed, or a key file cannot be read

None of them is retryable: each one needs a person to fix a file or a key. The root is
`agent.runtime.errors.OtwatchError`, as for every otwatch exception.
"""

from __future__ import annotations

from agent.runtime.errors import OtwatchError


class ApprovalsError(OtwatchError):
    """Base of every error the approvals package raises."""


class ApprovalsFileError(ApprovalsError, ValueError):
    """An approvals file is invalid; the message names the file, the key and the fix."""


class ApprovalsStateError(ApprovalsError):
    """The persisted single-use state cannot be read; refusing it keeps used approvals used."""


class SigningError(ApprovalsError, ValueError):
    """A key, a key file or a signature is malformed."""
