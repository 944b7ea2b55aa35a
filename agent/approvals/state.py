"""Which single-use approvals are used up, persisted as JSON so a restart keeps them used.

The file is written atomically (temporary file, fsync, rename, fsync of the folder): after a
crash it holds either the old or the new set, never half of one.

File format::

    {"version": 1, "used": {"CR-2026-0042": "2026-11-23T09:12:00+00:00"}}
"""

from __future__ import annotations

import json
from pathlib import Path

from agent.approvals.errors import ApprovalsStateError
from agent.runtime.files import write_atomically

VERSION = 1


def load_used(path: Path) -> dict[str, str]:
    """The used-up approval ids and when; a missing file is an empty set, a corrupt one an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ApprovalsStateError(
            f"{path}: cannot read the single-use state: {exc.strerror} (fix: check permissions)"
        ) from exc
    try:
        data = json.loads(text)
        used = data["used"]
        if data.get("version") != VERSION or not isinstance(used, dict):
            raise ValueError(f"expected version {VERSION} with a `used` mapping")
        return {str(k): str(v) for k, v in used.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ApprovalsStateError(
            f"{path}: the single-use state is corrupt ({exc}) (fix: restore it from a backup; "
            "deleting it makes every used single-use approval usable again)"
        ) from exc


def save_used(path: Path, used: dict[str, str]) -> None:
    """Write the set atomically; raises OSError if the disk refuses."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps({"version": VERSION, "used": used}, sort_keys=True,
                                      indent=1))
