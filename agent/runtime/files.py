"""One way to replace a file atomically: a reader sees the old content or the new, never half.

Six places wrote a temporary file and renamed it, each a little differently (a fixed ``.tmp``
name two writers could share, fsync in some and not others, the folder's entry synced in
one). This is the one implementation: a unique temporary file in the target's folder, written,
flushed and (``durable``, the default) fsynced, renamed over the target with `os.replace`, then
the folder fsynced so that the rename itself survives a power cut. (``atomicwrites``, the
library that did this, is archived by its author; the standard library has the parts.)

Example::

    >>> write_atomically(Path("state/used.json"), json.dumps(used))
    >>> write_atomically(status_path, orjson.dumps(status), durable=False)   # a status file
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _process_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Read once, at import (changing the umask to read it is not thread-safe later).
_UMASK = _process_umask()


def write_atomically(path: Path | str, data: str | bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` (text as UTF-8) atomically; ``durable`` fsyncs the file
    and its folder. The file keeps its mode, or a new one gets what ``open`` would give it
    (0666 less the umask). Raises `OSError` (nothing changed) when the disk refuses."""
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_UMASK
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """fsync the folder, so that the rename is on disk too (where the platform allows it)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; the rename is still atomic
    finally:
        os.close(dir_fd)
