"""Statements run on the driver's own connection, inside the SQLAlchemy transaction.

The records batch (`detectors.records.ingest`) asks a few statements per batch whose answers
have a thousand rows or more (the keys its events may lead to): through SQLAlchemy each row is
a `Row` built in Python, through the driver a plain tuple (sqlite3 or psycopg in C). The
statement is the same text with the driver's placeholders, on the same connection and in the
same transaction. A driver error leaves as SQLAlchemy's `DBAPIError`, as an ``execute`` would
raise it, so `detectors.records.db.translated` names it the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError


def driver_connection(conn: Connection) -> Any:
    """The sqlite3 or psycopg connection under ``conn`` (in its transaction)."""
    return conn.connection.driver_connection


@contextmanager
def driver_errors(conn: Connection, what: str) -> Iterator[None]:
    """Driver errors inside as SQLAlchemy's `DBAPIError` (its right subclass)."""
    error = conn.dialect.loaded_dbapi.Error
    try:
        yield
    except error as exc:
        raise DBAPIError.instance(what, None, exc, error, hide_parameters=True) from exc


def fetch_all(conn: Connection, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` (driver placeholders: ``:name`` on SQLite, ``%(name)s`` on
    PostgreSQL) as tuples."""
    with driver_errors(conn, sql):
        cursor = driver_connection(conn).cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()
