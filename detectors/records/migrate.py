"""Schema migrations of the records store: Alembic, driven from code (users need no alembic.ini).

`migrate` runs in one write transaction: on PostgreSQL under an advisory lock (so classifiers
and the records UI started together take turns; DDL is transactional there), on SQLite under
``BEGIN IMMEDIATE`` (the same effect). A database made by releases before Alembic (a
``schema_version`` table with versions 1 and 2) is adopted first: stamped at revision 0001,
which builds that very schema, then upgraded like any other.

Revision ids are consecutive four-digit numbers, so the applied revision is also a schema
version number (`schema_version`; 0 for a database never migrated).

Example::

    >>> db = connect("records.db")
    >>> migrate(db)        # the revisions applied now
    [1, 2, 3]
    >>> schema_version(db), HEAD
    (3, 3)
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from detectors.records.db import Database, Dialect

log = logging.getLogger(__name__)

SCRIPT_DIR = Path(__file__).parent / "migrations"
_LOCK_KEY = "otwatch.records.migrate"
#: The revision that reproduces the schema of the releases before Alembic.
LEGACY_REVISION = "0001"
# Exactly what the old SQL migration 0002 ran (a version-1 database may already have the table,
# made by the containment publisher of that time).
_LEGACY_CURSOR = ("CREATE TABLE IF NOT EXISTS containment_cursor (topic TEXT PRIMARY KEY, "
                  "seq BIGINT NOT NULL, updated_at TEXT NOT NULL)")


def alembic_config(conn: Connection) -> Config:
    """An Alembic config on our script directory that runs on ``conn`` (already in a
    transaction): for `migrate`, and for ``alembic check`` in the tests."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_DIR))
    config.attributes["connection"] = conn
    return config


@cache
def head() -> int:
    """The newest revision as a number."""
    found = ScriptDirectory(str(SCRIPT_DIR)).get_current_head()
    assert found is not None, "the records migrations have no head revision"
    return int(found)


HEAD = head()


def migrate(db: Database) -> list[int]:
    """Bring the schema up to date (idempotent); returns the revisions applied now."""
    with db.write() as conn:
        if db.dialect is Dialect.POSTGRESQL:
            db.advisory_lock(_LOCK_KEY)
            if db.schema:
                conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {db.schema}")
        before = _current(conn)  # a legacy schema 1 still lacks part of revision 1
        if before >= head():  # the usual start: nothing to do, Alembic not run (nor logging)
            return []
        _adopt_legacy(conn)
        command.upgrade(alembic_config(conn), "head")
    applied = list(range(before + 1, head() + 1))
    log.info("records schema: applied revisions %s (now at %d)", applied, head())
    return applied


def schema_version(db: Database) -> int:
    """The applied revision as a number; 1 for a database of the releases before Alembic
    (their schema is revision 1), 0 for one never migrated."""
    with db.read() as conn:
        return _current(conn)


def _current(conn: Connection) -> int:
    revision = _alembic_revision(conn)
    if revision is not None:
        return int(revision)
    return 1 if _legacy_version(conn) >= 2 else 0


def _alembic_revision(conn: Connection) -> str | None:
    """Alembic's ``alembic_version`` row, read directly (a MigrationContext logs per use)."""
    if not _has_own_table(conn, "alembic_version"):
        return None
    value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if value is None else str(value)


def _has_own_table(conn: Connection, name: str) -> bool:
    """Whether the records schema itself holds ``name``. On PostgreSQL a table that is only
    visible through the search path (an older otwatch in ``public``, seen by a role whose own
    schema comes first) is not ours: reading it was refused ("permission denied"), or worse,
    it would have adopted someone else's schema."""
    here = None
    if conn.dialect.name == "postgresql":
        here = conn.execute(text("SELECT current_schema()")).scalar()
    return inspect(conn).has_table(name, schema=here)


def _legacy_version(conn: Connection) -> int:
    if not _has_own_table(conn, "schema_version"):
        return 0
    return int(conn.execute(text("SELECT COALESCE(MAX(version), 0) FROM schema_version"))
               .scalar_one())


def _adopt_legacy(conn: Connection) -> None:
    """A database of the SQL-migration releases: finish their schema 2 if needed, stamp it at
    revision 0001 (the same schema), and drop their ``schema_version`` table."""
    if _alembic_revision(conn) is not None:
        return
    legacy = _legacy_version(conn)
    if legacy == 0:
        return
    if legacy < 2:
        conn.exec_driver_sql(_LEGACY_CURSOR)
    command.stamp(alembic_config(conn), LEGACY_REVISION)
    conn.exec_driver_sql("DROP TABLE schema_version")
