"""Where the records database is: one parser for every tool, and one way to print it safely.

Accepted targets (the same everywhere: classifier, ``otwatch-records``, the web service,
the containment publisher)::

    records.db                              a SQLite file (relative or absolute path)
    sqlite:///abs/path/records.db           the same, as a URL
    postgresql://user:pw@host:5432/db       PostgreSQL (psycopg 3)
    postgres://user:pw@host/db              the same (the Heroku spelling)
    postgresql+psycopg://…                  the same, spelled as SQLAlchemy does

plus, for PostgreSQL only, an optional schema (lower-case letters, digits, underscores) that
becomes the connection's ``search_path``.

Example::

    >>> target = DatabaseTarget.parse("postgres://otwatch:secret@db/records", schema="plant1")
    >>> target.url.drivername, target.redacted
    ('postgresql+psycopg', 'postgresql+psycopg://otwatch:***@db/records')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from detectors.records._exceptions import RecordsError

_PG_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class DatabaseTarget:
    """A parsed records-database target: the SQLAlchemy URL, and the SQLite file if any."""

    url: URL
    schema: str | None = None

    @classmethod
    def parse(cls, target: str, *, schema: str | None = None) -> DatabaseTarget:
        """Parse ``target``; a bad target or schema raises `RecordsError` naming the fix."""
        if target.startswith(_PG_SCHEMES):
            if schema is not None and not _SCHEMA_NAME.match(schema):
                raise RecordsError(
                    f"schema {schema!r}: use lower-case letters, digits and underscores"
                )
            try:
                url = make_url(target)
            except ArgumentError as exc:
                raise RecordsError(f"cannot read the PostgreSQL DSN: {exc}") from None
            return cls(url.set(drivername="postgresql+psycopg"), schema)
        if schema is not None:
            raise RecordsError(
                f"schema={schema!r} applies to PostgreSQL only; {redact(target)!r} is SQLite"
            )
        if "://" in target and not target.startswith("sqlite:///"):
            raise RecordsError(
                f"unknown database target {redact(target)!r}: give a SQLite path, "
                "sqlite:///abs/path, or a postgresql:// DSN"
            )
        path = target.removeprefix("sqlite://") if target.startswith("sqlite:///") else target
        return cls(URL.create("sqlite+pysqlite", database=path))

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL."""
        return Path(self.url.database or "") if self.is_sqlite else None

    @property
    def redacted(self) -> str:
        """The target with any password hidden, for logs and error messages."""
        if self.is_sqlite:
            return str(self.sqlite_path)
        return self.url.render_as_string(hide_password=True)


def sqlite_path(target: str) -> Path | None:
    """The file behind a SQLite target, or None for a PostgreSQL DSN (no validation)."""
    if target.startswith(_PG_SCHEMES):
        return None
    return Path(target.removeprefix("sqlite://") if target.startswith("sqlite:///") else target)


def redact(target: str) -> str:
    """``target`` with its password replaced by ``***``; a path or unreadable text as given."""
    if "://" not in target or target.startswith("sqlite:"):
        return target
    try:
        return make_url(target).render_as_string(hide_password=True)
    except ArgumentError:
        return target.split("://", 1)[0] + "://…"  # never echo what we could not parse
