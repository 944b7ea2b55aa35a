"""One small connection wrapper over SQLite (sqlite3) and PostgreSQL (psycopg 3, sync).

The store writes its SQL once, with ``?`` placeholders; this module translates them for
psycopg, opens write transactions the way each dialect needs (``BEGIN IMMEDIATE`` on SQLite,
a row lock on PostgreSQL so the audit-trail chain has a single head), and applies the ordered
migrations in ``migrations/NNNN_name.<dialect>.sql``.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from detectors.records._exceptions import RecordsError, StoreUnavailable

Row = tuple[Any, ...]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.(sqlite|postgresql)\.sql$")


class Dialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class Database:
    """A connection in autocommit mode; transactions are explicit through `write`/`read`."""

    def __init__(self, dialect: Dialect, conn: Any, schema: str | None = None) -> None:
        self.dialect = dialect
        self._conn = conn
        self.schema = schema

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect is Dialect.POSTGRESQL else sql

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cur = self._conn.execute(self._sql(sql), tuple(params))
        return list(cur.fetchall()) if cur.description is not None else []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.dialect is Dialect.POSTGRESQL:
            with self._conn.cursor() as cur:
                cur.executemany(self._sql(sql), rows)
        else:
            self._conn.executemany(sql, rows)

    @contextmanager
    def write(self) -> Iterator[None]:
        """One write transaction; writers are serialised (SQLite lock, PostgreSQL row lock)."""
        with translated():
            if self.dialect is Dialect.SQLITE:
                with self._sqlite_tx("BEGIN IMMEDIATE"):
                    yield
                return
            with self._conn.transaction():
                yield

    def lock_trail_head(self) -> None:
        """PostgreSQL: serialise writers on one row so the trail chain stays linear."""
        if self.dialect is Dialect.POSTGRESQL:
            self.query("SELECT id FROM write_lock WHERE id = 1 FOR UPDATE")

    @contextmanager
    def read(self) -> Iterator[None]:
        """A consistent snapshot for multi-query reads."""
        with translated():
            if self.dialect is Dialect.SQLITE:
                with self._sqlite_tx("BEGIN"):
                    yield
                return
            with self._conn.transaction():
                self._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                yield

    @contextmanager
    def _sqlite_tx(self, begin: str) -> Iterator[None]:
        self._conn.execute(begin)
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def run_script(self, script: str) -> None:
        """Run a migration script inside the current transaction."""
        if self.dialect is Dialect.POSTGRESQL:
            self._conn.execute(script)
            return
        for statement in split_sqlite_script(script):
            self._conn.execute(statement)

    def close(self) -> None:
        self._conn.close()


@contextmanager
def translated() -> Iterator[None]:
    """Driver errors become `StoreUnavailable` (retry later) or `RecordsError` (refused)."""
    try:
        yield
    except RecordsError:
        raise
    except Exception as exc:
        ours = _translate(exc)
        if ours is None:
            raise
        raise ours from exc


def _translate(exc: Exception) -> RecordsError | None:
    if isinstance(exc, sqlite3.OperationalError):
        return StoreUnavailable(f"records database busy, unreachable or not migrated: {exc}")
    if isinstance(exc, sqlite3.Error):
        return RecordsError(f"records database refused the operation: {exc}")
    if type(exc).__module__.startswith("psycopg"):
        import psycopg

        if isinstance(exc, psycopg.OperationalError):
            return StoreUnavailable(f"records database unreachable: {exc}")
        if isinstance(exc, psycopg.Error):
            return RecordsError(f"records database refused the operation: {exc}")
    return None


def split_sqlite_script(script: str) -> list[str]:
    """Split on complete statements (trigger bodies keep their inner semicolons)."""
    statements: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not buf.strip():
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements


def connect(target: str, *, schema: str | None = None) -> Database:
    """Open ``target``: a PostgreSQL DSN, ``sqlite:///abs/path``, or a plain SQLite file path."""
    if target.startswith(("postgresql://", "postgres://")):
        return _connect_pg(target, schema)
    if schema is not None:
        raise RecordsError(f"schema={schema!r} applies to PostgreSQL only; {target!r} is SQLite")
    path = target.removeprefix("sqlite://") if target.startswith("sqlite:///") else target
    return _connect_sqlite(Path(path))


#: How long opening waits for another process that holds the file (SQLite's busy timeout).
SQLITE_BUSY_TIMEOUT_S = 30.0


def _connect_sqlite(path: Path) -> Database:
    try:
        conn = sqlite3.connect(
            path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_S, check_same_thread=False
        )
        _enable_wal(conn)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error as exc:
        raise StoreUnavailable(
            f"cannot open SQLite records database {str(path)!r}: {exc}; check the directory "
            "exists and is writable"
        ) from exc
    return Database(Dialect.SQLITE, conn)


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, waiting while another process does the same on a new file.

    Two classifiers started together on a fresh database both switch it to WAL; SQLite does
    not call its busy handler for that switch, so the loser gets "database is locked" at once
    (seen in 23 of 30 simultaneous starts). Retry within the busy timeout instead.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _connect_pg(dsn: str, schema: str | None) -> Database:
    import psycopg

    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise RecordsError(f"schema {schema!r}: use lower-case letters, digits and underscores")
    from psycopg.conninfo import make_conninfo

    extra = {"options": f"-c search_path={schema}"} if schema else {}
    try:
        conninfo = make_conninfo(dsn, connect_timeout=10, **extra)
        conn = psycopg.connect(conninfo, autocommit=True)
    except psycopg.Error as exc:
        raise StoreUnavailable(
            f"cannot connect to PostgreSQL records database {_redact(dsn)}: {exc}"
        ) from exc
    return Database(Dialect.POSTGRESQL, conn, schema)


def _redact(dsn: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", dsn)


def migrations(dialect: Dialect) -> list[tuple[int, str, str]]:
    """The ordered migrations of one dialect: (version, file name, SQL)."""
    found: list[tuple[int, str, str]] = []
    for item in resources.files("detectors.records").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(item.name)
        if match and match.group(2) == dialect.value:
            found.append((int(match.group(1)), item.name, item.read_text(encoding="utf-8")))
    return sorted(found)


def migrate(db: Database, applied_at: str) -> list[int]:
    """Apply pending migrations in order, each in its own transaction; returns the versions."""
    with db.write():
        _lock_migrations(db)
        if db.dialect is Dialect.POSTGRESQL and db.schema:
            db.execute(f"CREATE SCHEMA IF NOT EXISTS {db.schema}")
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
    applied: list[int] = []
    for version, name, script in migrations(db.dialect):
        with db.write():
            _lock_migrations(db)
            if db.query("SELECT 1 FROM schema_version WHERE version = ?", (version,)):
                continue
            db.run_script(script)
            db.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, applied_at),
            )
            applied.append(version)
    return applied


def _lock_migrations(db: Database) -> None:
    """PostgreSQL: one migrating process at a time (SQLite's BEGIN IMMEDIATE already is)."""
    if db.dialect is Dialect.POSTGRESQL:
        db.query("SELECT pg_advisory_xact_lock(hashtext('otwatch.records.migrate'))")


def schema_version(db: Database) -> int:
    rows = db.query("SELECT COALESCE(MAX(version), 0) FROM schema_version")
    return int(rows[0][0])
