"""The agent's event signing key: one Ed25519 key per agent, kept beside its spool.

Every event the agent publishes is signed with it (`agent.contract.signing`); the classifier
trusts the public key by its key id, so an event written to the topic by anyone else is a
finding, not a record. The key file holds base64 of the 32-byte seed (the format of the
approvals keys) and must be readable by the agent alone (mode 0600): one that others can read
is refused, as ssh refuses such a key.

Where it lives: ``events.signing_key_file`` when the config names one (it must exist), else
``<state_dir>/event-signing.key``, made on first start (or by ``otwatch-agent keys show``).

Example::

    >>> signer, made = load_signer(config)
    >>> signer.key_id, signer.public_key_b64        # give these to the classifier's config
    ('3f9c0a6b1d2e4f58', 'q0W...=')
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from agent.config import AgentConfig
from agent.contract.signing import EventSigner
from agent.errors import ConfigError

DEFAULT_KEY_FILE = "event-signing.key"


def key_path(config: AgentConfig) -> Path:
    """The key file this config uses."""
    return config.events.signing_key_file or config.agent.state_dir / DEFAULT_KEY_FILE


def load_signer(config: AgentConfig) -> tuple[EventSigner, bool]:
    """The agent's signer, and whether its key was made just now. `ConfigError` names the file
    and the fix when the key cannot be used."""
    path = key_path(config)
    if not path.exists():
        if config.events.signing_key_file is not None:
            raise ConfigError(
                f"events.signing_key_file: {path} does not exist; fix: the path, or remove the "
                "setting to have the agent make its own key in its state directory"
            )
        return _create(path), True
    return _read(path), False


def _create(path: Path) -> EventSigner:
    signer = EventSigner.generate()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(signer.private_b64 + "\n")
            out.flush()
            os.fsync(out.fileno())
    except FileExistsError:  # another process made it first: use that one
        return _read(path)
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot create the event signing key ({exc.strerror}); fix: make the "
            "state directory writable by the agent, or set events.signing_key_file"
        ) from None
    return signer


def _read(path: Path) -> EventSigner:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: cannot read the event signing key ({exc}); fix: the file's owner and mode"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path}: the event signing key is readable by others (mode {stat.filemode(mode)}); "
            f"fix: chmod 600 {path}"
        )
    try:
        return EventSigner.from_private_b64(text)
    except ValueError as exc:
        raise ConfigError(
            f"{path}: {exc}; fix: restore the key file, or remove it to have a new key made "
            "(then give its public key to the classifier: otwatch-agent keys show)"
        ) from None
