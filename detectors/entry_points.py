"""The console scripts of the classifier side, started without importing it first.

An edge host installs only the agent (``pip install otwatch``): the classifier's libraries
(SQLAlchemy, psycopg, aiohttp, ...) come with the ``classifier`` extra. Each script here
imports its command inside a guard, so that on such a host it says in one line what to install
(exit 1) instead of a ``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

#: The top-level modules of the ``classifier`` extra (pyproject.toml).
CLASSIFIER_MODULES = frozenset({
    "psycopg", "aiohttp", "sqlalchemy", "alembic", "argon2", "ldap3", "httpx", "standardwebhooks",
})
INSTALL_HINT = "pip install 'otwatch[classifier]'"


def _command(module: str, prog: str) -> Callable[[], int]:
    def entry() -> int:
        try:
            main: Callable[[], int] = importlib.import_module(module).main
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in CLASSIFIER_MODULES:
                raise
            print(f"{prog} needs the classifier extra (missing {exc.name}): {INSTALL_HINT}",
                  file=sys.stderr)
            return 1
        return main()

    entry.__name__ = prog.replace("-", "_")
    return entry


classifier = _command("detectors.cli", "otwatch-classifier")
records = _command("detectors.records_cli", "otwatch-records")
containment = _command("detectors.containment_cli", "otwatch-containment")
siem = _command("detectors.siem_cli", "otwatch-siem")
tickets = _command("detectors.tickets_cli", "otwatch-tickets")
