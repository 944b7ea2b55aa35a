"""The records database connection: SQLAlchemy Core over SQLite (stdlib) and PostgreSQL (psycopg 3).

One `Database` holds one connection for the life of a `RecordStore` (which is not shared between
threads). Transactions are explicit, and each dialect opens them the way the trail needs:

- SQLite: WAL, ``synchronous=FULL``, foreign keys on, a 30 s busy timeout, a 64 MiB page
  cache (`SQLITE_CACHE_KIB`), 16 KiB pages in a new file (`SQLITE_PAGE_SIZE`); a write transaction
  starts with ``BEGIN IMMEDIATE`` (the write lock is taken at once, so two writers never both
  read the trail head), a read with a plain ``BEGIN``. pysqlite would issue its own ``BEGIN``
  at the first write, so it is switched off and SQLAlchemy's ``begin`` event issues ours (the
  recipe in SQLAlchemy's pysqlite documentation).
- PostgreSQL: writers lock the one ``write_lock`` row (`lock_trail_head`) so the trail chain has
  a single head; a read runs at REPEATABLE READ so that its queries see one snapshot.

Driver errors leave this module as `detectors.records` errors (see `translated`).
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Update, create_engine, event, select, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import TableClause

from detectors.records._exceptions import NotMigrated, RecordsError, StoreUnavailable
from detectors.records.driver import driver_connection, driver_errors
from detectors.records.tables import write_lock
from detectors.records.target import DatabaseTarget

#: How long opening or writing waits for another process that holds the file (SQLite).
SQLITE_BUSY_TIMEOUT_S = 30.0
#: SQLite's page cache per connection, in KiB (its default is 2 MiB). The classifier's batch
#: looks up and inserts every event id in ``processed_events`` (random keys), so with the
#: default cache a growing store reads nearly every page it touches back from the OS and
#: spills dirty pages to the WAL mid-transaction: 60,000 events with the default cache made
#: 167k preads and 217k pwrites, with 64 MiB 53k and 160k (strace). The cache fills only as
#: pages are used: a small store or a short-lived connection never takes it all.
SQLITE_CACHE_KIB = 65_536
#: The page size of a new SQLite database (SQLite's default is 4 KiB; an existing database
#: keeps its own). The classifier's commit writes every page its batch dirtied to the WAL,
#: one frame and checksum per page: with 16 KiB pages a batch of 2,000 events writes a
#: quarter of the frames, and its commit costs half the system time (1.5-3 µs less CPU per
#: event in `tests.bench.measure_classifier_cpu`, 4 paired runs).
SQLITE_PAGE_SIZE = 16_384
#: Bound parameters per SQLite statement: 999, the lowest limit any SQLite build has had (3.32
#: raised the default to 32,766; the multi-row INSERT of `Bulk.run_tuples` stays under both).
SQLITE_MAX_VARIABLES = 999
#: The execution option that makes the next SQLite transaction ``BEGIN IMMEDIATE``.
_WRITE = "otwatch_write"
#: SQLSTATEs / SQLite messages of a schema that is missing or older than this code.
_UNDEFINED = ("42P01", "42703")
_SQLITE_UNDEFINED = ("no such table", "no such column", "has no column named")


#: Transaction-scoped locks on many keys, taken in the array's order.
_LOCK_KEYS = text(
    "SELECT count(pg_advisory_xact_lock(hashtext(k))) FROM unnest(CAST(:keys AS text[])) AS k"
)


class Dialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class Database:
    """One connection; `write()` and `read()` are its only transactions."""

    def __init__(self, engine: Engine, conn: Connection, target: DatabaseTarget) -> None:
        self.engine = engine
        self.conn = conn
        self.target = target
        self.dialect = Dialect.SQLITE if target.is_sqlite else Dialect.POSTGRESQL
        self.schema = target.schema

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction; writers are serialised (SQLite lock, PostgreSQL row lock)."""
        with translated():
            self.conn.execution_options(**{_WRITE: True})
            try:
                with self.conn.begin():
                    yield self.conn
            finally:
                self.conn.execution_options(**{_WRITE: False})

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A consistent snapshot for multi-query reads."""
        with translated(), self.conn.begin():
            if self.dialect is Dialect.POSTGRESQL:
                self.conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield self.conn

    def lock_trail_head(self) -> None:
        """PostgreSQL: serialise writers on one row so the trail chain stays linear."""
        if self.dialect is Dialect.POSTGRESQL:
            self.conn.execute(select(write_lock.c.id).where(write_lock.c.id == 1).with_for_update())

    def advisory_lock(self, key: str) -> None:
        """PostgreSQL: a transaction-scoped lock on ``key`` (SQLite's write lock covers it)."""
        if self.dialect is Dialect.POSTGRESQL:
            self.conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})

    def advisory_locks(self, keys: Sequence[str]) -> None:
        """`advisory_lock` on every key, in one statement (one round trip, not one per key).

        The keys are taken in the order given (an array's unnest yields its elements in
        order, each locked as its row is produced): callers pass them sorted, so that two
        writers with overlapping keys lock them in the same order and never deadlock.
        """
        if self.dialect is Dialect.POSTGRESQL and keys:
            self.conn.execute(_LOCK_KEYS, {"keys": list(keys)})

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            self.engine.dispose()


class Bulk:
    """One INSERT or UPDATE run for many rows (dicts keyed by column or bind name).

    On PostgreSQL an INSERT goes in with ``COPY ... FROM STDIN`` on the transaction's own
    connection: the server takes the rows as one stream (psycopg's executemany, which
    SQLAlchemy uses for an INSERT without RETURNING, sent one statement per row through the
    pipeline, and the batch's inserts were 38% of the classifier's time there). Only server
    defaults apply to a COPY, so the rows must name every column that has a Python-side
    default (the records tables have none). An UPDATE goes to SQLAlchemy with the list of
    dicts, which psycopg pipelines. On SQLite, SQLAlchemy's
    per-row parameter processing cost more than the driver's own ``executemany`` (measured:
    1.7 times as much on the ingest path), so there the statement is compiled once and
    each row goes to ``executemany`` as a tuple in the compiled parameter order. That skips
    SQLAlchemy's bind processors, so it is for the records tables' plain text and integer
    columns only.
    """

    def __init__(self, statement: Insert | Update) -> None:
        self.statement = statement
        self._sqlite: tuple[str, itemgetter[Any]] | None = None
        #: The compiled statement's parameter order (SQLite).
        self._order: tuple[str, ...] = ()
        #: Rows per statement, and the INSERT with that many rows of placeholders (SQLite).
        self._many: tuple[int, str] | None = None

    def run(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        if conn.dialect.name != "sqlite":
            if isinstance(self.statement, Insert):
                _copy_rows(conn, self.statement.table.name, rows)
            else:
                conn.execute(self.statement, list(rows))
            return
        sql, getter = self._compiled(conn)
        _executemany(conn, sql, [getter(row) for row in rows])

    def run_tuples(
        self, conn: Connection, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """An INSERT of rows given as tuples in the order of ``columns`` (on SQLite, the
        compiled statement's order: every column of the table): the ingest's per-event rows,
        with no dict built per row and taken apart again."""
        assert isinstance(self.statement, Insert)
        if not rows:
            return
        if conn.dialect.name != "sqlite":
            table = self.statement.table
            assert isinstance(table, TableClause)  # (an INSERT or UPDATE of one table)
            _copy_rows(conn, table.name, rows, columns)
            return
        sql, _ = self._compiled(conn)
        if self._order != tuple(columns):
            raise ValueError(f"rows in the order {columns}; the statement's is {self._order}")
        # Many rows per statement: the driver binds and steps once per statement, not per
        # row (2,000 evidence rows: 1.2 µs a row against 2.7 with one row per statement).
        per = max(1, SQLITE_MAX_VARIABLES // len(columns))
        whole = len(rows) - len(rows) % per
        if whole:
            chain = itertools.chain.from_iterable
            _executemany(conn, self._many_rows_sql(sql, per), [
                tuple(chain(rows[start:start + per])) for start in range(0, whole, per)
            ])
        if whole < len(rows):
            _executemany(conn, sql, rows[whole:])

    def _many_rows_sql(self, sql: str, per: int) -> str:
        """The compiled one-row INSERT with ``per`` rows of placeholders after VALUES."""
        if self._many is None or self._many[0] != per:
            head, _, row = sql.rpartition(" VALUES ")
            assert head and row == "(" + ", ".join("?" * len(self._order)) + ")", sql
            self._many = (per, f"{head} VALUES {', '.join([row] * per)}")
        return self._many[1]

    def _compiled(self, conn: Connection) -> tuple[str, itemgetter[Any]]:
        if self._sqlite is None:
            compiled = self.statement.compile(dialect=conn.dialect)
            assert isinstance(compiled, SQLCompiler) and compiled.positiontup is not None
            self._sqlite = (compiled.string, itemgetter(*compiled.positiontup))
            self._order = tuple(compiled.positiontup)
        return self._sqlite


def _executemany(conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """The driver's ``executemany`` on the transaction's own connection (SQLite): the
    statement is compiled already, and SQLAlchemy's execution context around it cost more
    than the rows' binding on the ingest path."""
    with driver_errors(conn, sql):
        cursor = driver_connection(conn).cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()


def _copy_rows(
    conn: Connection, table: str, rows: Sequence[dict[str, Any]] | Sequence[tuple[Any, ...]],
    names: Sequence[str] | None = None,
) -> None:
    """``rows`` into ``table`` with COPY, in the connection's transaction (PostgreSQL): dicts
    by column name, or tuples in the order of ``names``.

    A driver error leaves as SQLAlchemy's `DBAPIError` (its right subclass), as an
    ``execute`` would raise it, so `translated` names it the same way.
    """
    from psycopg import sql  # the PostgreSQL driver is there whenever the dialect is

    columns = list(names) if names is not None else list(rows[0])
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with driver_errors(conn, f"COPY {table}"):
        cursor = driver_connection(conn).cursor()
        try:
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row if isinstance(row, tuple) else [row[c] for c in columns])
        finally:
            cursor.close()


@contextmanager
def translated() -> Iterator[None]:
    """Driver errors become `StoreUnavailable` / `NotMigrated` (retry later) or `RecordsError`."""
    try:
        yield
    except RecordsError:
        raise
    except SQLAlchemyError as exc:
        raise translate(exc) from exc


def translate(exc: SQLAlchemyError) -> RecordsError:
    """Our error for one SQLAlchemy error, with the driver's own words in it."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    words = str(orig).strip()
    if getattr(orig, "sqlstate", None) in _UNDEFINED or (
        isinstance(orig, sqlite3.OperationalError) and words.startswith(_SQLITE_UNDEFINED)
    ):
        return NotMigrated(
            f"records database not migrated (run the classifier or `otwatch-records migrate` "
            f"against it): {words}"
        )
    if isinstance(exc, DBAPIError) and (
        isinstance(orig, sqlite3.OperationalError) or exc.connection_invalidated
        or type(orig).__name__ == "OperationalError"
    ):
        return StoreUnavailable(f"records database busy or unreachable: {words}")
    return RecordsError(f"records database refused the operation: {words}")


def connect(target: str, *, schema: str | None = None) -> Database:
    """Open ``target``: a PostgreSQL DSN, ``sqlite:///abs/path``, or a plain SQLite file path."""
    parsed = DatabaseTarget.parse(target, schema=schema)
    engine = _sqlite_engine(parsed) if parsed.is_sqlite else _pg_engine(parsed)
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:
        engine.dispose()
        kind = "SQLite" if parsed.is_sqlite else "PostgreSQL"
        fix = "; check the directory exists and is writable" if parsed.is_sqlite else ""
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        raise StoreUnavailable(
            f"cannot open {kind} records database {parsed.redacted!r}: {orig}{fix}"
            if parsed.is_sqlite else
            f"cannot connect to {kind} records database {parsed.redacted}: {orig}"
        ) from exc
    return Database(engine, conn, parsed)


def _sqlite_engine(target: DatabaseTarget) -> Engine:
    engine = create_engine(
        target.url, poolclass=NullPool,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # no implicit BEGIN from pysqlite: ours below
        # Only a database without pages takes it (before WAL: a WAL file fixes the size).
        dbapi_conn.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        _enable_wal(dbapi_conn)
        dbapi_conn.execute("PRAGMA synchronous=FULL")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        dbapi_conn.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


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


def _pg_engine(target: DatabaseTarget) -> Engine:
    args: dict[str, Any] = {"connect_timeout": 10}
    if target.schema:
        args["options"] = f"-c search_path={target.schema}"
    return create_engine(target.url, poolclass=NullPool, connect_args=args)
