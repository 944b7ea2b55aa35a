"""Where the records database is, from the environment: never on the command line.

A PostgreSQL DSN carries a password, and a command line is visible to every user of the host
(``ps``). So the services read it from ``$OTWATCH_RECORDS_DB``, or from the file named by
``$OTWATCH_RECORDS_DB_FILE`` (a systemd credential, a Docker or Kubernetes secret mounted as
a file). ``--db`` stays for a SQLite path or a DSN without a password.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

ENV_DB = "OTWATCH_RECORDS_DB"
ENV_DB_FILE = "OTWATCH_RECORDS_DB_FILE"


class RecordsDbEnvError(ValueError):
    """``$OTWATCH_RECORDS_DB_FILE`` names a file that cannot be read, or an empty one."""


def records_db_from_env(env: Mapping[str, str]) -> str | None:
    """``$OTWATCH_RECORDS_DB``, else the first line of the file ``$OTWATCH_RECORDS_DB_FILE``,
    else None."""
    if env.get(ENV_DB):
        return env[ENV_DB]
    path = env.get(ENV_DB_FILE)
    if not path:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise RecordsDbEnvError(
            f"{ENV_DB_FILE}={path}: cannot read it ({exc.strerror}); fix: point it at the "
            "file that holds the records database's DSN, readable by this service") from None
    if not text:
        raise RecordsDbEnvError(f"{ENV_DB_FILE}={path}: the file is empty; fix: write the "
                                "DSN (postgresql://user:password@host/db) into it")
    return text.splitlines()[0]
